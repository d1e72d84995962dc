"""Pick the ``Model`` for a role from its config (and ``--backend``/``--model`` overrides).

Backends are imported only when chosen: the anthropic SDK costs over a second to import and
must never load for ``--help`` or a scripted run.
"""

from __future__ import annotations

from pathlib import Path

from agentflow import config
from agentflow.errors import UsageError
from agentflow.models import BACKEND_NAMES, EXTERNAL_BACKENDS
from agentflow.models.base import Model


def get_model(
    role_cfg: config.RoleModel,
    *,
    root: Path,
    role: str,
    override_backend: str | None = None,
    override_model: str | None = None,
) -> Model:
    """The model of ``role``; ``UsageError`` (exit 2) for a missing key, script or unknown backend."""
    backend = override_backend or role_cfg.backend
    model_name = override_model or role_cfg.model
    if backend == "anthropic":
        from agentflow.models.anthropic import AnthropicModel

        return AnthropicModel(model_name)
    if backend == "scripted":
        from agentflow.models.scripted import load_script

        if not role_cfg.script:
            raise UsageError(
                f"the scripted backend needs a script for the {role}",
                where="agentflow.yaml",
                fix=f"set models.{role}.script to a YAML/JSON script file",
            )
        path = Path(role_cfg.script)
        return load_script(path if path.is_absolute() else root / path, role)
    if backend in EXTERNAL_BACKENDS:
        raise UsageError(
            f"backend {backend!r} runs an external agent, not an API model",
            fix="run it through agentflow.session.run_role_session",
        )
    raise UsageError(f"unknown backend {backend!r}", fix=f"use one of {', '.join(BACKEND_NAMES)}")
