"""Role prompts: Jinja2 Markdown templates rendered with ``StrictUndefined``.

Built-in templates ship with the package (``prompts/`` in the source tree, ``agentflow/_data/prompts``
in a wheel); a repository overrides one by putting ``prompts/<role>.md`` at its root.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import threading
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
    path = template_path(role, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the template: {exc}", where=path, fix="save it as UTF-8 text") from None
    return render_text(text, path, **context)


def render_text(text: str, where: str | Path, **context: Any) -> str:
    """Render template ``text`` (read from ``where``) in Jinja2's ``SandboxedEnvironment``.

    A template is content (a user's ``prompts/``, possibly written by an agent): it may use the
    documented variables and filters, never reach Python internals. Anything the sandbox refuses is
    exit 2 naming the template, and no code runs.
    """
    import jinja2

    try:
        return _compiled(text).render(**context)
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"template uses an undefined variable: {exc.message}", where=where, fix="use only the documented variables"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"template syntax error: {exc.message}", where=f"{where}:{exc.lineno}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise UsageError(
            f"template refused by the sandbox: {exc}",
            where=where,
            fix="a prompt template may use the documented variables and filters only",
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"template failed to render: {exc}", where=where, fix="use only the documented variables"
        ) from None


_TEMPLATES: dict[str, Any] = {}  # template text -> compiled Template, once per process (#19 item 5)
_TEMPLATES_LOCK = threading.Lock()


def _compiled(text: str) -> Any:
    """The template of ``text`` in the one ``SandboxedEnvironment``, compiled once per process.

    Compiling a role prompt costs a good part of a second of CPU, and under ``-j`` every run's every
    session paid it while holding the GIL. The key is the whole text, so an edited or per-run
    recorded template compiles anew; the sandbox's checks run at render time, on every render.
    A template that fails to compile is not kept (the error is raised each time).
    """
    with _TEMPLATES_LOCK:
        template = _TEMPLATES.get(text)
        if template is None:
            template = _environment().from_string(text)
            if len(_TEMPLATES) >= 32:
                _TEMPLATES.clear()
            _TEMPLATES[text] = template
        return template


def precompile(text: str) -> None:
    """Compile ``text`` into the cache ahead of its first render (a build's warm-up); a template
    that does not compile is left for the render to report."""
    import jinja2

    with contextlib.suppress(jinja2.TemplateError):
        _compiled(text)


@functools.cache
def _environment() -> Any:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


TASK_MARKER = "<!-- agentflow:task -->"
DEFAULT_SYSTEM = "You are an agentflow {role}. Follow the instructions in the first message."


def split_prompt(rendered: str, role: str) -> tuple[str, str]:
    """A rendered template's system part (before ``TASK_MARKER``) and first user message (after it).

    Runs of blank lines left by template conditionals are collapsed to one. Without the marker the
    whole text is the first message under a default system prompt.
    """
    rendered = re.sub(r"\n{3,}", "\n\n", rendered)
    if TASK_MARKER in rendered:
        system, task = rendered.split(TASK_MARKER, 1)
        return system.strip() + "\n", task.strip() + "\n"
    return DEFAULT_SYSTEM.format(role=role), rendered


def prompts_sha(root: Path | None, roles: tuple[str, ...] = ("builder", "verifier")) -> str:
    """A short hash of the templates in effect, recorded with every verdict."""
    texts = []
    for role in roles:
        try:
            texts.append(template_path(role, root).read_bytes())
        except UsageError:
            continue
    return texts_sha(texts)


def texts_sha(texts: list[bytes]) -> str:
    """``prompts_sha`` of template contents (the trusted inputs a run recorded)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text)
    return digest.hexdigest()[:16]
