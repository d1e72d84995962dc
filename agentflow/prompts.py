"""Role prompts: Jinja2 Markdown templates rendered with ``StrictUndefined``.

Built-in templates ship with the package (``prompts/`` in the source tree, ``agentflow/_data/prompts``
in a wheel); a repository overrides one by putting ``prompts/<role>.md`` at its root.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from agentflow.errors import UsageError

_PACKAGE = Path(__file__).resolve().parent


def builtin_dir(name: str) -> Path:
    """A data folder shipped with agentflow: wheel layout first, then the source checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise UsageError(f"agentflow's built-in {name}/ folder is missing", fix="reinstall agentflow")


def template_path(role: str, root: Path | None = None) -> Path:
    if root is not None and (override := root / "prompts" / f"{role}.md").is_file():
        return override
    path = builtin_dir("prompts") / f"{role}.md"
    if not path.is_file():
        raise UsageError(f"no prompt template for role {role!r}", where=path, fix="reinstall agentflow")
    return path


def render(role: str, root: Path | None = None, **context: Any) -> str:
    """Render the prompt of ``role``; an undefined variable is an error naming the template."""
    import jinja2

    path = template_path(role, root)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    try:
        return env.from_string(path.read_text(encoding="utf-8")).render(**context)
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"template uses an undefined variable: {exc.message}", where=path, fix="use only the documented variables"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"template syntax error: {exc.message}", where=f"{path}:{exc.lineno}") from None


def prompts_sha(root: Path | None, roles: tuple[str, ...] = ("builder", "verifier")) -> str:
    """A short hash of the templates in effect, recorded with every verdict."""
    digest = hashlib.sha256()
    for role in roles:
        try:
            digest.update(template_path(role, root).read_bytes())
        except UsageError:
            continue
    return digest.hexdigest()[:16]
