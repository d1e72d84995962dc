"""Model backends behind one protocol (``agentflow.models.base.Model``), and the one table of them.

Only ``agentflow.models.anthropic`` imports the anthropic SDK, and only when a session starts; this
module imports nothing, so the config and the CLI can read the table at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendInfo:
    """What agentflow knows of a backend before importing it.

    ``session`` names the module and function that run a whole session for an external agent
    (``None``: an API-style model driven by agentflow's own tool loop); ``verifier``: it can submit
    a verdict.
    """

    name: str
    session: tuple[str, str] | None
    verifier: bool


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo("anthropic", None, verifier=True),
        BackendInfo("scripted", None, verifier=True),
        BackendInfo("command", ("agentflow.models.command", "run_command_session"), verifier=False),
        BackendInfo("claude-code", ("agentflow.models.claude_code", "run_claude_code_session"), verifier=True),
    )
}
BACKEND_NAMES = tuple(BACKENDS)
API_BACKENDS = tuple(name for name, info in BACKENDS.items() if info.session is None)
EXTERNAL_BACKENDS = tuple(name for name, info in BACKENDS.items() if info.session is not None)
VERIFIER_BACKENDS = tuple(name for name, info in BACKENDS.items() if info.verifier)
