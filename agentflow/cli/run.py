"""``agentflow build`` and ``agentflow verify``: parse, call ``agentflow.orchestration``, print, exit."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentflow.cli import _common

if TYPE_CHECKING:
    from agentflow.events import Event
    from agentflow.orchestration import BuildResult
    from agentflow.report.verify import ReportTarget, VerifyReport

BUILD_HELP = """Build plans: builder session in a worktree, commit, checks, independent verifier, rework until approved.

Each plan gets the branch agentflow/<id>-<slug> and a worktree under .agentflow/worktrees/; your own working tree is never touched. Exit 0 approved, 1 not approved (changes requested, rejected, capped), 3 no verdict (backend failure), 2 bad input, 130 interrupted (resume with --resume RUN). With several plans the worst exit code wins (3 over 1 over 0).

Examples:

  agentflow build .plans/348-capsule-isolation.md

  agentflow build 348 349 -j 2 --max-cycles 2 --budget-usd 10

  agentflow build 348 --dry-run

  agentflow build 348 --script demo-script.yaml      # scripted backend (offline)

  agentflow build --resume r-20261127-a1b2c3
"""

VERIFY_HELP = """Verify base...head of this repository: checks plus an independent verifier session (CI step).

The plan comes from --plan or the Agentflow-Plan trailer of the head commits; without one the change is judged against the CLAUDE.md patterns alone. The verdict is recorded in the ledger and as a git note on head. Exit 0 only when approved; 1 not approved, 3 no verdict, 2 bad input.

Deterministic rules run on every verification (tests deleted or switched off, assertions removed, runner config loosened, outcomes rewritten, check commands neutralised, prompt-injection signals; docs/build.md): their high findings block approval whatever the verifier says, and only `agentflow approve --override` opens the gate. --context FILE adds the pull-request text to what the verifier reads and the injection scan covers.

Formats: text, json, md, github (workflow annotations, plus Markdown appended to $GITHUB_STEP_SUMMARY when set), sarif (SARIF 2.1.0), junit (JUnit XML).

--checks-only runs only the checks (the config's and the plan's, or those of every plan the trailers in base..head name) in a clean checkout of head, without a verifier and without writing a note: a merge queue re-runs them on the merge result. Exit 0 when at least one check ran and all passed, 1 otherwise.

Several reports from one verification: --format/--output is the main report (stdout by default); --json, --md, --sarif and --junit FILE each write one more report of the same verdict, so CI pays for and records one verification, not one per report. Every report path is checked before anything runs (exit 2, nothing paid for): two reports to one file, a folder, a folder that cannot be written, a link inside the checkout. Folders are created when the reports are written; one that still cannot be written then costs no other report, and the verdict stays recorded (exit 2).

Examples:

  agentflow verify --base origin/main --format github --sarif agentflow.sarif

  agentflow verify --junit reports/agentflow.xml --md reports/agentflow.md

  agentflow verify --plan 348 --format sarif --output agentflow.sarif

  agentflow verify --format junit --output reports/agentflow.xml

  agentflow verify --checks-only --base "$QUEUE_BASE" --format github   # merge queue: test what will land

  agentflow verify --context pr.md --compare-base   # PR text scanned and shown as untrusted; test counts vs base
"""


class TerminalReporter:
    """Progress on stderr: a live line per running plan on a terminal, plain lines otherwise."""

    def __init__(self, live: bool):
        self._lock = threading.Lock()
        self._status: dict[str, tuple[dict[str, Any], float]] = {}  # run id -> (progress, when received)
        self._live: Any = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(stderr=True)
            self._live = Live(console=self._console, refresh_per_second=4, transient=True)

    def __enter__(self) -> TerminalReporter:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def _print(self, line: str) -> None:
        from agentflow.redact import redact

        # progress quotes model text (a verdict's reason): redacted like the ledger, and on one line,
        # since in a CI log a line of its own could start a workflow command
        from agentflow.text import terminal_text

        line = terminal_text(redact(" ".join(line.splitlines())))
        with self._lock:
            if self._live is not None:
                self._live.console.print(line, markup=False, highlight=False)
            else:
                typer.echo(line, err=True)

    def on_message(self, message: str) -> None:
        self._print(message)

    def on_event(self, event: Event) -> None:
        from agentflow.events import RunEnded

        line = describe_event(event)
        if line:
            self._print(line)
        if isinstance(event, RunEnded) and self._live is not None:
            with self._lock:
                self._status.pop(str(event.run_id), None)
                self._live.update(_StatusLines(self))

    def on_progress(self, progress: dict[str, Any]) -> None:
        if self._live is None:
            return
        with self._lock:
            self._status[str(progress.get("run_id"))] = (dict(progress), time.monotonic())
            self._live.update(_StatusLines(self))


class _StatusLines:
    """The live lines, rendered afresh at every refresh so elapsed time keeps moving between events."""

    def __init__(self, reporter: TerminalReporter):
        self.reporter = reporter

    def __rich__(self) -> Any:
        from rich.text import Text

        now = time.monotonic()
        with self.reporter._lock:
            entries = list(self.reporter._status.values())
        return Text("\n".join(progress_line(progress, now - received) for progress, received in entries))


def progress_line(progress: dict[str, Any], since: float = 0.0) -> str:
    """One run's live line: who is working, on what right now, and for how long.

    ``since`` is the time since this progress report arrived (added to its elapsed time)."""
    what = f"plan {progress['plan']}" if progress.get("plan") else "verify"
    elapsed = float(progress.get("elapsed_s", 0)) + since
    parts = [what, str(progress.get("role")), f"cycle {progress.get('cycle')}"]
    if progress.get("role") != "checks":
        parts += [
            f"turn {progress.get('turn', 0)}",
            f"{int(progress.get('tokens', 0)):,} tokens",
            f"${float(progress.get('cost_usd', 0)):.2f}",
        ]
    activity = progress.get("activity") or (f"last: {progress['tool']}" if progress.get("tool") else None)
    if activity:
        parts.append(str(activity))
    parts.append(f"{elapsed:.0f}s")
    return " · ".join(parts)


def describe_event(event: Event) -> str | None:
    """One plain line for the events a person wants to follow."""
    from agentflow import events as ev
    from agentflow.text import one_line

    run = f"[{event.run_id}] " if event.run_id else ""
    if isinstance(event, ev.RunStarted):
        what = f"plan {event.plan_id}" if event.plan_id else "change"
        where = f" on {event.branch}" if event.branch and event.mode == "build" else ""
        return f"{run}{event.mode} {what}{where} (max {event.max_cycles} cycle(s))"
    if isinstance(event, ev.RunResumed):
        return f"{run}resumed"
    if isinstance(event, ev.BuilderCommitted):
        if event.commit is None:
            return f"{run}cycle {event.cycle}: the builder changed nothing"
        scope = f", outside scope: {', '.join(event.out_of_scope)}" if event.out_of_scope else ""
        files = f"{event.files_changed} file{'' if event.files_changed == 1 else 's'}"
        return (
            f"{run}cycle {event.cycle}: committed {event.commit[:12]} ({files}, "
            f"+{event.insertions} -{event.deletions}{scope})"
        )
    if isinstance(event, ev.ChecksRan):
        failed = [r.command for r in event.results if not r.passed]
        if not event.results:
            return None
        status = f"{len(event.results) - len(failed)} passed" + (f", failed: {', '.join(failed)}" if failed else "")
        return f"{run}cycle {event.cycle}: checks {status}"
    if isinstance(event, ev.VerdictRecorded):
        decision = f" (verifier: {event.decision})" if event.decision else ""
        why = f": {one_line(event.reason, 300)}" if event.reason and event.outcome != "approved" else ""
        return f"{run}cycle {event.cycle}: {event.outcome}{decision}{why}"
    if isinstance(event, ev.RunEnded):
        why = f": {one_line(event.reason, 300)}" if event.reason and event.outcome != "approved" else ""
        return f"{run}ended: {event.outcome} after {event.cycles} cycle(s){why}"
    return None


def _reporter() -> TerminalReporter:
    return TerminalReporter(live=sys.stderr.isatty())


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[None]:
    """SIGINT sets ``orchestration.INTERRUPTED`` and then raises ``KeyboardInterrupt`` as Python's own
    handler does. A KeyboardInterrupt raised inside a ``__del__`` or a finalizer is only printed and
    the build went on (exit 0 after a Ctrl-C); the flag is checked between steps and at every
    session turn, so the runs still stop, resumably. Only in the main thread, and only over Python's
    own handler (an ignored SIGINT stays ignored)."""
    from agentflow.orchestration import INTERRUPTED

    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        INTERRUPTED.set()
        previous(signum, frame)

    INTERRUPTED.clear()
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        INTERRUPTED.clear()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def summary_lines(result: BuildResult) -> list[str]:
    lines = [f"plan {result.plan_id} ({result.plan_title}): {result.outcome.upper()} after {result.cycles} cycle(s)"]
    if result.reason and result.outcome != "approved":
        lines.append(f"  why: {_one_line(result.reason)}")
    lines.append(f"  run {result.run_id} · branch {result.branch} · cost ${result.cost_usd:.2f}")
    if result.findings:
        lines.append(f"  open findings ({len(result.findings)}):")
        for f in result.findings:
            where = f" {f['file']}{':' + str(f['line']) if f.get('line') else ''}" if f.get("file") else ""
            # model text on one line: in a CI log a line of its own could start a workflow command
            lines.append(
                f"    {f['severity']:8} {_one_line(f['id'])}{' ' + _one_line(where) if where else ''}: {_one_line(f['message'])}"
            )
    lines.append(f"  next: {result.next_command}")
    return lines


def _combined_exit(codes: list[int]) -> int:
    """A backend failure (3) outranks not approved (1), which outranks approved (0)."""
    if 3 in codes:
        return 3
    return 1 if any(codes) else 0


def build(
    plans: Annotated[
        list[str] | None, typer.Argument(metavar="PLAN", help="Plan files or ids.", show_default=False)
    ] = None,
    max_cycles: Annotated[
        int | None, typer.Option("--max-cycles", metavar="N", help="Cycle cap (a plan's max_cycles wins).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            metavar="NAME",
            help="Backend for builder and verifier: anthropic, scripted, command, claude-code.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", metavar="NAME", help="Model name for builder and verifier.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", metavar="USD", help="Dollar budget per run.")
    ] = None,
    resume: Annotated[str | None, typer.Option("--resume", metavar="RUN", help="Continue a killed run.")] = None,
    jobs: Annotated[int, typer.Option("-j", "--jobs", metavar="N", help="Plans to build in parallel.")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the prompts of cycle 1; send nothing.")] = False,
    script: Annotated[
        Path | None,
        typer.Option("--script", metavar="FILE", help="Script for the scripted backend (implies --backend scripted)."),
    ] = None,
) -> None:
    probe = None if dry_run else _probe_sandbox_early()
    try:
        from agentflow.errors import UsageError
        from agentflow.orchestration import BuildOptions, resume_run
        from agentflow.orchestration import build as build_plans
        from agentflow.orchestration import dry_run as preview

        root = _common.repo().root
        options = BuildOptions(
            max_cycles=max_cycles, backend=backend, model=model, budget_usd=budget_usd, script=script, jobs=jobs
        )
        if resume and plans:
            raise UsageError(
                "--resume continues one run; do not name plans with it", fix="`agentflow build --resume RUN`"
            )
        if dry_run:
            if resume:
                raise UsageError("--dry-run cannot be combined with --resume")
            for item in preview(root, plans or [], options):
                _common.out(f"===== plan {item.plan_id}: {item.role}, cycle {item.cycle}: system prompt =====")
                _common.out(item.system)
                _common.out(f"===== plan {item.plan_id}: {item.role}, cycle {item.cycle}: first message =====")
                _common.out(item.prompt)
            _common.err("dry run: nothing was sent and nothing was created")
            return
        started = time.monotonic()
        if probe is not None:
            probe.join()  # done by now (the imports above take longer): the build reads its cached answer
        with _interrupt_flag(), _reporter() as reporter:
            results = (
                [resume_run(root, resume, options, reporter)]
                if resume
                else build_plans(root, plans or [], options, reporter)
            )
        for result in results:
            for line in summary_lines(result):
                _common.out(line)
        if len(results) > 1:
            approved = sum(1 for r in results if r.outcome == "approved")
            _common.out(f"{approved} of {len(results)} plan(s) approved in {time.monotonic() - started:.0f}s")
        _common.exit_with(_combined_exit([r.exit_code for r in results]))
    finally:
        if probe is not None:
            probe.join()  # never left running past the command (its answer is cached)


def _probe_sandbox_early() -> threading.Thread:
    """Start bwrap's probe (``agentflow.sandbox``: one sandboxed ``/bin/sh``, 20-70 ms, cached for the
    process) on a thread before the build's modules are imported (0.3 s of the main thread), so it
    runs on another CPU meanwhile instead of inside the build's checks before anything starts
    (#19 item 5: the first model call waited for it). Only the probe's answer is kept: the build
    still asks ``Sandbox.from_config`` and fails closed on a bad answer; a failure here is ignored."""

    def probe() -> None:
        with contextlib.suppress(Exception):
            from agentflow.sandbox import require_bwrap

            require_bwrap()

    thread = threading.Thread(target=probe, name="agentflow-sandbox-probe", daemon=True)
    thread.start()
    return thread


def verify(
    base: Annotated[
        str | None, typer.Option("--base", metavar="REF", help="Base ref (default: the config's base branch).")
    ] = None,
    head: Annotated[str, typer.Option("--head", metavar="REF", help="Head ref to verify.")] = "HEAD",
    plan: Annotated[
        str | None, typer.Option("--plan", metavar="PLAN", help="Plan file or id (default: Agentflow-Plan trailer).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="text|json|md|github|sarif|junit", help="Report format.")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the --format report to FILE (default: stdout)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", metavar="NAME", help="Verifier backend: anthropic, scripted, claude-code."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="NAME", help="Verifier model name.")] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", metavar="USD", help="Dollar budget for the run.")
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option("--script", metavar="FILE", help="Script for the scripted backend (implies --backend scripted)."),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Also write the JSON report to FILE.")
    ] = None,
    md_file: Annotated[
        Path | None, typer.Option("--md", metavar="FILE", help="Also write the Markdown report to FILE.")
    ] = None,
    sarif_file: Annotated[
        Path | None, typer.Option("--sarif", metavar="FILE", help="Also write the SARIF 2.1.0 report to FILE.")
    ] = None,
    junit_file: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="Also write the JUnit XML report to FILE.")
    ] = None,
    checks_only: Annotated[
        bool,
        typer.Option(
            "--checks-only",
            help="Run the checks alone on HEAD (no verifier, no note): exit 0 all passed, 1 otherwise. For merge queues.",
        ),
    ] = False,
    context: Annotated[
        Path | None,
        typer.Option(
            "--context",
            metavar="FILE",
            help="Pull-request text (title, description): shown to the verifier as untrusted, scanned for injection.",
        ),
    ] = None,
    compare_base: Annotated[
        bool,
        typer.Option(
            "--compare-base",
            help="Also run the JUnit checks on the base: fewer tests or more skipped than there is a finding.",
        ),
    ] = False,
) -> None:
    from agentflow.orchestration import BuildOptions, exit_code_for, verify_checks
    from agentflow.orchestration import verify as verify_change
    from agentflow.report.github import github_step_summary
    from agentflow.report.verify import report_targets

    # formats and paths checked before the verifier runs: a problem found afterwards would waste the verification
    targets = report_targets(fmt, output, {"json": json_file, "md": md_file, "sarif": sarif_file, "junit": junit_file})
    root = _common.repo().root
    if checks_only:
        with TerminalReporter(live=False) as reporter:
            report = verify_checks(root, base=base, head=head, plan_ref=plan, reporter=reporter)
    else:
        options = BuildOptions(backend=backend, model=model, budget_usd=budget_usd, script=script)
        with TerminalReporter(live=False) as reporter:
            report = verify_change(
                root,
                base=base,
                head=head,
                plan_ref=plan,
                options=options,
                reporter=reporter,
                context=context,
                compare_base=compare_base,
            )
    _write_reports(report, targets)
    if fmt == "github" and (summary := github_step_summary(report)) is not None:
        _common.err(f"appended the summary to {summary}")
    _common.exit_with((0 if report.passed else 1) if checks_only else exit_code_for(report.outcome))


def _write_reports(report: VerifyReport, targets: list[ReportTarget]) -> None:
    """Write every report; one unwritable file does not cost the others (the verdict is recorded)."""
    from agentflow.errors import UsageError
    from agentflow.report.verify import render

    failed: list[str] = []
    fixes: list[str] = []
    for fmt, path in targets:
        try:
            _common.write_output(render(report, fmt), path)
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror or exc}")
        except UsageError as exc:  # a folder that cannot be made, a link the change committed
            failed.append(f"{path}: {exc.problem}")
            if exc.fix and exc.fix not in fixes:
                fixes.append(exc.fix)
    if failed:
        raise UsageError(
            f"could not write the report(s) {'; '.join(failed)}",
            fix=f"the verdict is recorded, see `agentflow show {report.run_id}`; "
            + ("; ".join(fixes) or "use writable paths next time"),
        )


def register(app: typer.Typer) -> None:
    app.command("build", help=BUILD_HELP)(build)
    app.command("verify", help=VERIFY_HELP)(verify)
