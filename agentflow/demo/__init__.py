"""``agentflow demo``: agentflow's main job, end to end, on the built-in scripted model.

The demo creates Capsulary (a small multi-tenant sample project with a tenant-isolation leak) and
walks the whole story through the real command line, exactly as a user would type it:
evaluate the event log, build the remediation plan (builder, checks, verifier, rework), gate,
merge and report. The only difference from a live run is the model: a script shipped in the
package (``script.yaml``), or the real API with ``live=True``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.demo.sample import create_project
from agentflow.errors import UsageError

SCRIPT = Path(__file__).resolve().parent / "script.yaml"
PLAN_ID = "1"

Printer = Callable[[str], None]


@dataclass
class Step:
    title: str
    command: list[str]
    exit_code: int
    output: str
    expected: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.exit_code in self.expected


@dataclass
class DemoResult:
    root: Path
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def step(self, title_prefix: str) -> Step:
        return next(s for s in self.steps if s.title.startswith(title_prefix))


def demo_config(live: bool, sandbox_off: bool = False) -> str:
    """The sample project's agentflow.yaml: scripted roles offline, the API when live; with
    ``sandbox_off`` (offline, where bubblewrap cannot run) the built-in script runs unconfined."""
    python = shlex.quote(sys.executable)
    models = (
        ""
        if live
        else "models:\n"
        f"  builder: {{backend: scripted, script: {SCRIPT}}}\n"
        f"  verifier: {{backend: scripted, script: {SCRIPT}}}\n"
    )
    return (
        "# Capsulary's agentflow configuration (written by `agentflow demo`)\n"
        "base: main\n"
        f'checks: ["{python} -m unittest -q"]\n'
        f"{models}"
        "limits: {max_cycles: 3, run_cost_usd: 5.0}\n"
        "events:\n"
        "  paths: [logs/events.jsonl]\n"
        "  isolation_fields: [tenant_id, capsule_id]\n"
        '  exempt_types: ["Tenant*"]   # platform-level events legitimately have no capsule\n'
        + (
            "sandbox: {mode: off}   # no bubblewrap here: only the demo's own script runs, never a model\n"
            if sandbox_off
            else ""
        )
    )


def _sandbox_missing() -> str | None:
    """Why bubblewrap cannot run here (None when it can)."""
    from agentflow.sandbox import SandboxUnavailable, require_bwrap

    try:
        require_bwrap()
    except SandboxUnavailable as exc:
        return exc.problem.removeprefix("sandbox: ")
    return None


class _Runner:
    """Runs each step as a user would type it, echoing the command and its output."""

    def __init__(self, root: Path, say: Printer, result: DemoResult):
        self.root, self.say, self.result = root, say, result
        self.title = ""

    def section(self, title: str) -> None:
        self.title = title
        self.say(f"\n== {title}")

    def agentflow(self, *args: str, expect: tuple[int, ...] = (0,)) -> Step:
        # agentflow itself keeps the model and signing keys (it keeps them from its own children)
        return self.run(["agentflow", *args], [sys.executable, "-m", "agentflow", *args], expect, None)

    def python(self, *args: str) -> Step:
        from agentflow.redact import scrubbed_env

        return self.run(["python", *args], [sys.executable, *args], (0,), scrubbed_env())  # the sample's code

    def git(self, *args: str) -> Step:
        from agentflow.git import git_env

        return self.run(["git", *args], ["git", *args], (0,), git_env())  # hooks and filters see no secret

    def run(self, shown: list[str], argv: list[str], expect: tuple[int, ...], env: dict[str, str] | None) -> Step:
        self.say(f"$ {shlex.join(shown)}")
        proc = subprocess.Popen(
            argv, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            self.say(line.rstrip("\n"))
        code = proc.wait()
        step = Step(self.title, shown, code, "".join(lines), expect)
        self.result.steps.append(step)
        if not step.ok:
            raise UsageError(
                f"demo step {shlex.join(shown)!r} exited {code}, expected {' or '.join(map(str, expect))}",
                where=self.root,
                fix="rerun with --keep to inspect the sample project",
            )
        return step


def _remove_project(directory: Path, made: bool) -> None:
    """What a failed ``create_project`` wrote: the directory it made, or what it put into the empty one."""
    if made:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for entry in directory.iterdir() if directory.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def run_demo(directory: Path | None, *, live: bool, say: Printer) -> DemoResult:
    """Create the sample project in ``directory`` (a new temporary one when None) and run the story."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="agentflow-demo-")) / "capsulary"
    elif directory.exists() and not directory.is_dir():
        raise UsageError("is not a directory", where=directory, fix="name a new or empty directory")
    elif directory.exists() and any(directory.iterdir()):
        raise UsageError("the demo directory is not empty", where=directory, fix="name a new or empty directory")
    started = time.monotonic()
    result = DemoResult(directory)
    # Offline, the only "agent" is agentflow's own script, so a machine without bubblewrap still gets
    # the whole story, unconfined and saying so; a live model is untrusted and keeps the sandbox
    # (the build then stops with the fix, as any build would).
    missing = None if live else _sandbox_missing()
    made = not directory.exists()
    try:
        create_project(directory, demo_config(live, sandbox_off=missing is not None))
    except OSError as exc:  # a read-only or missing parent, a full disk: nothing of the project is left
        _remove_project(directory, made)
        first = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args and exc.args[0] else None
        raise UsageError(
            f"cannot create the sample project: {first or exc.strerror or exc}",
            where=directory,
            fix="name a new or empty directory in a folder you can write to",
        ) from None
    run = _Runner(directory, say, result)
    say(f"Capsulary, a small multi-tenant service, in {directory}")
    say(f"Model: {'the Anthropic API (live)' if live else 'the built-in scripted model (offline, no API key)'}")
    if missing:
        say(
            f"Sandbox: off for this demo ({missing}): the only agent is agentflow's own script. "
            "Real builds need it: apt-get install bubblewrap"
        )

    run.section("1. The project: its conventions and the events it emits")
    run.agentflow("patterns", "list")
    run.python("-m", "app.simulate", "logs/events.jsonl")

    run.section("2. The evaluator finds the isolation leaks and writes a remediation plan")
    run.agentflow("evaluate", "--plan-out", ".plans", expect=(1,))
    plan = next((directory / ".plans").glob(f"{PLAN_ID}-*.md"))
    plan_rel = plan.relative_to(directory).as_posix()
    run.git("add", plan_rel)
    run.git("commit", "-q", "-m", f"Plan {PLAN_ID}: capsule isolation remediation")

    run.section("3. Builder, checks and an independent verifier, reworking until approval")
    build = run.agentflow("build", plan_rel, expect=(0, 1, 3) if live else (0,))
    if build.exit_code != 0:  # a live model may not get there; the gate stays shut and the story ends here
        say("\nThe live run was not approved, so there is nothing to gate or merge: see `agentflow show`.")
        result.seconds = time.monotonic() - started
        return result
    branch = next(word for line in build.output.splitlines() for word in line.split() if word.startswith("agentflow/"))

    run.section("4. The gate opens for the approved commit, and closes for an unverified edit")
    run.agentflow("gate", branch)
    run.git("switch", "-q", "-c", "hotfix", branch)
    keys = directory / "app" / "keys.py"
    keys.write_text(keys.read_text(encoding="utf-8") + "\n\nDEBUG_KEYS = True\n", encoding="utf-8")
    run.git("commit", "-q", "-am", "Quick debug flag")
    run.agentflow("gate", "hotfix", expect=(1,))
    run.git("switch", "-q", "main")

    run.section("5. Merge the approved change; the events it emits carry capsule_id")
    run.agentflow("merge", PLAN_ID)
    run.python("-m", "app.simulate", "logs/events.jsonl")
    run.agentflow("evaluate")

    run.section("6. The weekly report")
    run.agentflow("metrics", "--since", "7d")
    result.seconds = time.monotonic() - started
    return result
