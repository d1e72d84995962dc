"""Check commands (the plan's and the config's): run in the worktree, recorded in the ledger.

A check is a shell command whose exit code decides: 0 passes, anything else (and a timeout) fails.
Checks run with a scrubbed environment (no API keys or tokens reach them), in their own process
group so that a timeout kills everything they started, and only the tail of their output is kept:
enough to explain a failure to the builder and the verifier without flooding their context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from agentflow.events import CheckResult
from agentflow.redact import redact, scrubbed_env
from agentflow.tools import run_shell

TAIL_LINES = 60
TAIL_CHARS = 4000


def output_tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last ``lines`` lines of ``text``, at most ``chars`` characters, secrets redacted."""
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    if len(tail) > chars:
        tail = "…" + tail[-chars:]
    return redact(tail)


def run_check(command: str, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> CheckResult:
    """Run one check command through the shell; ``exit_code`` is None when it timed out."""
    exit_code, out, seconds = run_shell(command, cwd, timeout, env)
    note = f"\n[agentflow: timed out after {timeout:g}s and was killed]" if exit_code is None else ""
    return CheckResult(
        command=command,
        exit_code=exit_code,
        duration_s=round(seconds, 3),
        output_tail=output_tail(out + note),
    )


def run_checks(
    commands: Sequence[str],
    cwd: Path,
    timeout: float,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Run every command in order (a failure does not stop the others: the verifier sees all)."""
    env = scrubbed_env()
    results = []
    for command in commands:
        result = run_check(command, cwd, timeout, env)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def check_commands(config_checks: Sequence[str], plan_checks: Sequence[str] = ()) -> list[str]:
    """The config's checks then the plan's, without duplicates, in order."""
    seen: dict[str, None] = {}
    for command in [*config_checks, *plan_checks]:
        if command.strip():
            seen.setdefault(command.strip(), None)
    return list(seen)


def declared_at(command: str, root: Path, candidates: Sequence[str]) -> tuple[str, int] | None:
    """``(file, line)`` of the first line of the ``candidates`` files (relative to ``root``) that
    declares ``command``, for reports that must point at a place (SARIF, annotations); None if none."""
    for relative in candidates:
        try:
            lines = (root / relative).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        exact = re.compile(r"""(^|[\s"'\[,=-])""" + re.escape(command) + r"""($|["'\],]|\s+#)""")
        for number, line in enumerate(lines, start=1):
            if exact.search(line.strip()):
                return relative, number
    return None
