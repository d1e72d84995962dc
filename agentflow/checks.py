"""Check commands (the plan's and the config's): run on a clean checkout, recorded in the ledger.

A check is a shell command whose exit code decides: 0 passes, anything else (and a timeout) fails.
Checks run inside the sandbox (``agentflow.sandbox``: the checkout the only writable tree, an
allowlisted environment without API keys or tokens, their own PID namespace so that a timeout or
their end kills everything they started), and only the tail of their output is kept:
enough to explain a failure to the builder and the verifier without flooding their context.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from agentflow.config import CheckSpec, check_spec
from agentflow.events import CheckResult
from agentflow.redact import redact
from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell

TAIL_LINES = 60
TAIL_CHARS = 4000


def output_tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last ``lines`` lines of ``text``, at most ``chars`` characters, secrets redacted."""
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    if len(tail) > chars:
        tail = "…" + tail[-chars:]
    return redact(tail)


def run_check(
    command: str | CheckSpec,
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    sandbox: Sandbox | None = None,
) -> CheckResult:
    """Run one check command through the shell; ``exit_code`` is None when it timed out.

    A check with ``junit: true`` runs with ``{report}`` replaced by a fresh path inside ``cwd`` (so a
    sandboxed check can write it); the report is read, judged and removed afterwards.
    """
    spec = check_spec(command)
    if not spec.junit:
        return _run(spec.run, spec.run, cwd, timeout, env, sandbox)
    from agentflow import evidence

    folder = Path(tempfile.mkdtemp(prefix=".agentflow-report-", dir=cwd))
    try:
        report = folder / "junit.xml"
        result = _run(spec.run, evidence.substitute(spec.run, report), cwd, timeout, env, sandbox)
        try:
            counts = evidence.parse_junit(report, within=cwd)  # no link the check left is followed
        except ValueError as exc:
            return result.model_copy(update={"junit": True, "evidence": str(exc)})
        return result.model_copy(update={"junit": True, **counts.as_dict(), "evidence": evidence.judge(counts)})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(
    label: str, command: str, cwd: Path, timeout: float, env: dict[str, str] | None, sandbox: Sandbox | None
) -> CheckResult:
    exit_code, out, seconds = run_shell(command, cwd, timeout, env, sandbox)
    note = f"\n[agentflow: timed out after {timeout:g}s and was killed]" if exit_code is None else ""
    return CheckResult(
        command=label,
        exit_code=exit_code,
        duration_s=round(seconds, 3),
        output_tail=output_tail(out + note),
    )


def run_checks(
    commands: Sequence[str | CheckSpec],
    cwd: Path,
    timeout: float,
    on_result: Callable[[CheckResult], None] | None = None,
    sandbox: Sandbox | None = None,
) -> list[CheckResult]:
    """Run every command in order (a failure does not stop the others: the verifier sees all).

    ``cwd`` should be a clean checkout of the commit (``Run.run_checks`` makes one), never the
    builder's working directory: what was not committed must not decide a check.
    """
    sandbox = Sandbox.from_config() if sandbox is None else sandbox
    env = sandbox.environment()
    results = []
    for command in commands:
        result = run_check(command, cwd, timeout, env, sandbox)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def check_specs(
    config_checks: Sequence[str | CheckSpec], plan_checks: Sequence[str | CheckSpec] = ()
) -> list[CheckSpec]:
    """The config's checks then the plan's, without duplicate commands, in order."""
    seen: dict[str, CheckSpec] = {}
    for entry in [*config_checks, *plan_checks]:
        spec = check_spec(entry)
        if spec.run.strip():
            seen.setdefault(spec.run.strip(), spec.model_copy(update={"run": spec.run.strip()}))
    return list(seen.values())


def check_commands(config_checks: Sequence[str | CheckSpec], plan_checks: Sequence[str | CheckSpec] = ()) -> list[str]:
    """The commands of ``check_specs``."""
    return [spec.run for spec in check_specs(config_checks, plan_checks)]


def declared_at(command: str, root: Path, candidates: Sequence[str]) -> tuple[str, int] | None:
    """``(file, line)`` of the first line of the ``candidates`` files (relative to ``root``) that
    declares ``command``, for reports that must point at a place (SARIF, annotations); None if none."""
    inside = root.resolve()
    for relative in candidates:
        path = (root / relative).resolve()  # the checkout may be a pull request's: no FIFO, no link out
        if not path.is_file() or not path.is_relative_to(inside):
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        exact = re.compile(r"""(^|[\s"'\[,=-])""" + re.escape(command) + r"""($|["'\],]|\s+#)""")
        for number, line in enumerate(lines, start=1):
            if exact.search(line.strip()):
                return relative, number
    return None
