"""The ``command`` backend: an external coding agent CLI as the builder.

Any program that takes a prompt file and edits a directory can build: agentflow writes the
rendered prompt (system part, then the task) to a file outside the worktree, runs the configured
``command`` through the shell with ``{prompt_file}`` replaced by that file's quoted path, in the
worktree, inside the sandbox (``agentflow.sandbox``: the worktree the only writable tree, the
prompt file bound in read-only, no network unless ``sandbox.network``), with a timeout, and then
commits whatever changed and verifies it like any other build. The agent's own output tail is the
session's summary.

The environment is the sandbox's allowlist. An agent that needs a key of its own gets it only when
named explicitly in ``sandbox.env`` or ``AGENTFLOW_COMMAND_PASS_ENV`` (comma-separated variable
names): explicit over clever, and nothing leaks by accident.

Only the builder can be a command: a verifier must submit a structured verdict.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agentflow.errors import UsageError
from agentflow.redact import redact
from agentflow.sandbox import Sandbox
from agentflow.session_types import ProgressFn, SessionRecorder, SessionResult, SessionSpec, Status
from agentflow.tools import run_shell

if TYPE_CHECKING:
    from agentflow.ledger import Ledger

PASS_ENV = "AGENTFLOW_COMMAND_PASS_ENV"
TAIL_CHARS = 4000


def command_env(environ: dict[str, str] | None = None, sandbox: Sandbox | None = None) -> dict[str, str]:
    """The sandbox's allowlisted environment plus the variables ``AGENTFLOW_COMMAND_PASS_ENV`` names."""
    environ = dict(os.environ if environ is None else environ)
    sandbox = sandbox or Sandbox.off()
    passed = [n for n in (n.strip() for n in environ.get(PASS_ENV, "").split(",")) if n]
    return sandbox.environment(environ, extra=passed)


def build_command(template: str, prompt_file: Path) -> str:
    if "{prompt_file}" not in template:
        raise UsageError(
            "the command has no {prompt_file} placeholder",
            where=f"command: {template}",
            fix="e.g. `my-agent --prompt-file {prompt_file}`",
        )
    return template.replace("{prompt_file}", shlex.quote(str(prompt_file)))


def run_command_session(spec: SessionSpec, ledger: Ledger, on_progress: ProgressFn | None = None) -> SessionResult:
    """Run the external builder once; ``completed`` when it exits 0, ``limits`` on timeout, else ``failed``."""
    if spec.role != "builder":
        raise UsageError(
            f"the command backend can only run the builder, not the {spec.role}",
            fix=f"set models.{spec.role}.backend to anthropic, scripted or claude-code",
        )
    template = spec.role_cfg.command if spec.role_cfg is not None else None
    if not template:
        raise UsageError(
            "the command backend needs a command",
            where="agentflow.yaml",
            fix="set models.builder.command, e.g. 'my-agent --prompt-file {prompt_file}'",
        )
    name = template.split()[0]
    recorder = SessionRecorder(spec, ledger, on_progress)
    recorder.turns = 1  # the whole command is one turn, at no cost agentflow can see
    recorder.start("command", name)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="agentflow-prompt-") as folder:
        prompt_file = Path(folder) / "prompt.md"
        prompt_file.write_text(f"{spec.system.strip()}\n\n{spec.prompt}", encoding="utf-8")
        command = build_command(template, prompt_file)
        recorder.progress(tool=name)
        try:
            sandbox = spec.sandbox or Sandbox.from_config()
            exit_code, output, _ = run_shell(
                command,
                spec.root,
                spec.limits.max_seconds,
                command_env(sandbox=sandbox),
                sandbox,
                readable=[prompt_file.parent],
            )
        except KeyboardInterrupt:
            recorder.finish("interrupted", "interrupted by the user", None)
            raise
    tail = redact(output[-TAIL_CHARS:])
    recorder.record_tool_call(
        "command",
        {"command": template},
        is_error=exit_code != 0,
        output_chars=len(output),
        duration_s=time.monotonic() - started,
    )
    transcript = [
        {"role": "user", "content": [{"type": "text", "text": prompt_file.name + ": " + spec.prompt}]},
        {"role": "command", "command": template, "exit_code": exit_code, "output_tail": tail},
    ]
    status: Status
    if exit_code is None:
        status, reason = "limits", f"the command timed out after {spec.limits.max_seconds:g}s"
    elif exit_code != 0:
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        status, reason = "failed", f"the command exited with {exit_code}: {last}"
    else:
        status, reason = "completed", None
    summary = tail.strip()[-1000:] or None
    return recorder.finish(
        status,
        reason,
        {"summary": summary or ""} if status == "completed" else None,
        summary=summary,
        transcript=transcript,
    )
