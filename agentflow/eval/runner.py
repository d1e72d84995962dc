"""Run the verifier on every case of a dataset, each in a temporary clone, through ``agentflow verify``'s
own domain function (checks, sandbox, rules and all), and collect one ``CaseRun`` per case and repeat."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.errors import AgentflowError, BackendError, UsageError
from agentflow.eval.cassette import Cassette, CassetteModel, Volatile, http_client
from agentflow.eval.dataset import Case
from agentflow.git import git_env
from agentflow.models.base import Model, ModelRequest, ModelResponse

FIXED_DATE = "2026-01-01T00:00:00+00:00"  # commits made for a case get the same ids every run
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "agentflow eval",
    "GIT_AUTHOR_EMAIL": "eval@agentflow.invalid",
    "GIT_COMMITTER_NAME": "agentflow eval",
    "GIT_COMMITTER_EMAIL": "eval@agentflow.invalid",
    "GIT_AUTHOR_DATE": FIXED_DATE,
    "GIT_COMMITTER_DATE": FIXED_DATE,
}


@dataclass
class EvalOptions:
    backend: str | None = None
    model: str | None = None
    script: Any = None  # the parsed script (role -> sessions) of the scripted backend
    repeat: int = 1
    jobs: int = 1
    record: Path | None = None
    replay: Path | None = None
    record_ledger: bool = False  # keep each run's events (export_run) to import into the user's ledger


@dataclass
class CaseRun:
    """One verification of one case."""

    case: Case
    repeat: int
    outcome: str  # approved | changes_requested | no_verdict
    decision: str | None
    findings: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    tokens: int = 0
    seconds: float = 0.0
    run_id: str = ""
    ledger_lines: list[str] = field(default_factory=list)  # with --record-ledger: the run's exported events


class _Counting:
    """Counts the tokens of a model's replies."""

    def __init__(self, inner: Model):
        self.inner = inner
        self.name = inner.name
        self.tokens = 0

    def complete(self, request: ModelRequest) -> ModelResponse:
        response = self.inner.complete(request)
        u = response.usage
        self.tokens += u.input_tokens + u.output_tokens + u.cache_read + u.cache_write
        return response


def _git(cwd: Path, *args: str, input: str | None = None) -> str:
    env = git_env(_GIT_ENV)  # agentflow's git environment: no API key, signing key or token
    try:
        done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, input=input, env=env)
    except subprocess.CalledProcessError as exc:
        raise UsageError(f"git {' '.join(args[:2])} failed: {exc.stderr.strip()[:300]}") from None
    return done.stdout.strip()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "case"


def _plan_text(case: Case) -> str:
    text = case.plan or ""
    if text.startswith("---"):
        return text
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.strip()), case.id)
    return f"---\nid: eval-{_slug(case.id)}\ntitle: {title!r}\n---\n{text}\n"


def prepare(case: Case, workdir: Path) -> tuple[Path, str, str, str | None]:
    """The case laid out in ``workdir/repo``: (root, base, head, plan path). The base gets the plan
    committed on top (verify reads trusted inputs from the base); the change is one commit on it."""
    root = workdir / "repo"
    try:
        if case.repo is None:
            from agentflow.eval.builtin import create_base

            create_base(root)
            base = "HEAD"
        else:
            source = case.repo.resolve()
            _git(workdir, "clone", "-q", "--no-checkout", str(source), str(root))
            base = _resolve(root, source, case.base)
            head = _resolve(root, source, case.head) if case.head else None
            _git(root, "checkout", "-q", "--detach", base)
            if head:
                diff = _git(root, "diff", "--binary", "--full-index", base, head) + "\n"
        _git(root, "config", "user.name", "agentflow eval")
        _git(root, "config", "user.email", "eval@agentflow.invalid")
        _git(root, "config", "commit.gpgsign", "false")
        _git(root, "checkout", "-q", "-B", "eval-base")
        plan_path = None
        if case.plan:
            plan_path = f".plans/eval-{_slug(case.id)}.md"
            (root / ".plans").mkdir(exist_ok=True)
            (root / plan_path).write_text(_plan_text(case), encoding="utf-8")
            _git(root, "add", "--", plan_path)
            _git(root, "commit", "-q", "--no-verify", "-m", f"eval: the plan of case {case.id}")
        base_commit = _git(root, "rev-parse", "HEAD")
        _git(root, "checkout", "-q", "-b", "eval-change")
        for name, content in case.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content, encoding="utf-8")
        patch = case.patch if case.patch is not None else (diff if case.repo is not None and case.head else None)
        if patch is not None and patch.strip():
            _git(
                root,
                "apply",
                "--index",
                "--whitespace=nowarn",
                "-",
                input=patch if patch.endswith("\n") else patch + "\n",
            )
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "--no-verify", "--allow-empty", "-m", f"eval: case {case.id}")
        head_commit = _git(root, "rev-parse", "HEAD")
    except UsageError as exc:
        raise UsageError(
            f"case {case.id}: {exc.problem}", where=case.where or None, fix=exc.fix or "check base, head and patch"
        ) from None
    return root, base_commit, head_commit, plan_path


def _resolve(clone: Path, source: Path, rev: str) -> str:
    for candidate in (rev, f"origin/{rev}"):
        try:
            return _git(clone, "rev-parse", "--verify", "-q", f"{candidate}^{{commit}}")
        except UsageError:
            continue
    if source.is_dir():  # a commit no branch reaches: resolve it in the source and fetch it
        sha = _git(source, "rev-parse", "--verify", f"{rev}^{{commit}}")
        _git(clone, "fetch", "-q", str(source), sha)
        return sha
    raise UsageError(f"no revision {rev!r} in {source}", fix="name a commit, branch or tag the repo has")


def _configured_model(root: Path) -> str:
    """The verifier model the case's repository configures (``models.verifier.model``)."""
    from agentflow.config import load_config

    return load_config(root).models.for_role("verifier").model  # type: ignore[arg-type]


def _model_factory(
    root: Path,
    case_key: str,
    repeat: int,
    options: EvalOptions,
    cassette: Cassette | None,
    volatile: Volatile,
    script_session: Any,
    counter: list[_Counting],
):
    backend = options.backend

    def factory(role: str, cycle: int) -> Model:
        inner: Model | None
        if backend == "anthropic":
            from agentflow.models.anthropic import AnthropicModel

            client = http_client(cassette, case_key, repeat, volatile) if cassette is not None else None
            key = "replay-needs-no-key" if cassette is not None and cassette.mode == "replay" else None
            inner = AnthropicModel(options.model or _configured_model(root), api_key=key, http_client=client)
        else:
            inner = None
            if script_session is not None:
                from agentflow.models.scripted import ScriptedModel

                inner = ScriptedModel({"verifier": [script_session]}, "eval script").for_role("verifier")
            if cassette is not None:
                inner = CassetteModel(inner, cassette, case_key, repeat, volatile)
        assert inner is not None
        counted = _Counting(inner)
        counter.append(counted)
        return counted

    return factory


def run_case(case: Case, repeat: int, options: EvalOptions, cassette: Cassette | None, session: Any) -> CaseRun:
    """Verify ``case`` once in a temporary clone, through ``agentflow verify``'s domain function."""
    from agentflow.orchestration import BuildOptions
    from agentflow.orchestration import verify as verify_change

    with tempfile.TemporaryDirectory(prefix="agentflow-eval-") as tmp:
        root, base, head, plan = prepare(case, Path(tmp))
        volatile = Volatile(
            commits={base: "<base>", head: "<head>"},
            paths={str(root): "<repo>", str(Path(tmp).resolve()): "<tmp>", tmp: "<tmp>"},
        )
        counter: list[_Counting] = []
        case_key = f"{case.id}#{repeat + 1}"
        factory = None
        if options.backend != "claude-code":
            factory = _model_factory(root, case_key, repeat, options, cassette, volatile, session, counter)
        build = BuildOptions(backend=options.backend, model=options.model, models=factory)
        started = time.monotonic()
        try:
            report = verify_change(root, base=base, head=head, plan_ref=plan, options=build)
        except BackendError:
            raise
        except AgentflowError as exc:
            raise type(exc)(f"case {case.id}: {exc.problem}", where=case.where or exc.where, fix=exc.fix) from None
        seconds = time.monotonic() - started
        if cassette is not None and case_key in cassette.misses:
            raise BackendError(
                f"case {case.id} (repeat {repeat + 1}): a model request is not in the cassette "
                f"{cassette.directory} ({cassette.misses[case_key]})",
                fix="the prompt, plan or change differs from the recording: record again with --record DIR",
            )
        lines: list[str] = []
        if options.record_ledger:
            from agentflow.ledger import Ledger

            with Ledger.open(root) as ledger:
                lines = ledger.export_run(report.run_id)
        decision = report.decision
        return CaseRun(
            case=case,
            repeat=repeat,
            outcome=report.outcome if report.outcome in ("approved", "no_verdict") else "changes_requested",
            decision=decision,
            findings=[dict(f) for f in report.findings],
            reasons=list(report.reasons),
            cost_usd=report.cost_usd,
            tokens=sum(c.tokens for c in counter),
            seconds=seconds,
            run_id=report.run_id,
            ledger_lines=lines,
        )


def run_eval(cases: list[Case], options: EvalOptions) -> list[CaseRun]:
    """Every case ``options.repeat`` times (``options.jobs`` at once); runs in dataset order."""
    if options.record and options.replay:
        raise UsageError("--record and --replay exclude each other", fix="pass one of them")
    if (options.record or options.replay) and options.backend == "claude-code":
        raise UsageError(
            "the claude-code backend cannot be recorded or replayed (it runs an external agent)",
            fix="use --backend anthropic or scripted with --record/--replay (docs/eval.md)",
        )
    cassette = None
    if options.record:
        cassette = Cassette(options.record, "record")
    elif options.replay:
        cassette = Cassette(options.replay, "replay")
    tasks = [(case, r) for case in cases for r in range(options.repeat)]
    sessions: list[Any] = [None] * len(tasks)
    if options.backend == "scripted" and not (cassette and cassette.mode == "replay"):
        available = list((options.script or {}).get("verifier", []))
        if len(available) < len(tasks):
            raise UsageError(
                f"the script has {len(available)} verifier session(s) and the eval needs {len(tasks)} "
                f"({len(cases)} case(s) × {options.repeat} repeat(s))",
                fix="add one verifier session per case and repeat, in dataset order",
            )
        sessions = available[: len(tasks)]
    jobs = max(1, options.jobs)
    if jobs == 1:
        return [run_case(c, r, options, cassette, s) for (c, r), s in zip(tasks, sessions, strict=True)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_case, c, r, options, cassette, s) for (c, r), s in zip(tasks, sessions, strict=True)]
        return [f.result() for f in futures]
