"""A ledger and a git history with known numbers, for the metrics and show tests.

The story (all times UTC, November 2026). The report period is 16-22 Nov (``--since 2026-11-16
--until 2026-11-22``); the previous period is 9-15 Nov.

* previous: plan 100 (estimate 8 h) approved in cycle 1, 0.5 h after its run started.
* plan 101 (16 h): approved in cycle 1 after 0.5 h, merged into main.
* plan 102 (8 h): changes requested, then approved in cycle 2, 1.5 h after the start.
* plan 103 (no estimate): three cycles of changes requested, capped; later a human override.
* plan 104 (4 h): a run without verdict (no_verdict), then a run the verifier rejects.
* one evaluator session and evaluations before and in the period.

Every builder session costs what ``BUILDER_COST`` says and uses ``BUILDER_USAGE``; every verifier
session likewise; the expected figures in the tests are worked out by hand from these.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentflow.events import (
    BuilderCommitted,
    CheckResult,
    ChecksRan,
    FindingsRecorded,
    Merged,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    Usage,
    VerdictRecorded,
)
from agentflow.git import Repo
from agentflow.ledger import Ledger
from agentflow.verdict import VerdictNote
from tests.helpers import git

BUILDER_USAGE = Usage(input_tokens=1000, output_tokens=200, cache_read=4000, cache_write=500)
VERIFIER_USAGE = Usage(input_tokens=500, output_tokens=100, cache_read=2000, cache_write=0)
EVALUATOR_USAGE = Usage(input_tokens=3000, output_tokens=500)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def finding(fid: str, severity: str, pattern: str | None, message: str = "problem") -> dict[str, Any]:
    data: dict[str, Any] = {"id": fid, "severity": severity, "message": message, "file": "src/app.py", "line": 3}
    if pattern:
        data["pattern"] = pattern
    return data


@dataclass
class Cycle:
    builder_cost: float
    verifier_cost: float
    outcome: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    verifier_status: str = "completed"


@dataclass
class History:
    """Writes matching ledger events and git objects (commits with trailers, verdict notes)."""

    root: Path
    ledger: Ledger
    note_extensions: bool = False  # also write run_started/estimate_hours into the notes
    seq: int = 0

    @property
    def repo(self) -> Repo:
        return Repo(self.root)

    def session(
        self,
        run_id: str | None,
        role: str,
        cycle: int,
        start: datetime,
        minutes: int,
        cost: float,
        usage: Usage,
        status: str = "completed",
        summary: str | None = None,
    ) -> str:
        self.seq += 1
        sid = f"s-{self.seq:03d}"
        self.ledger.append(
            SessionStarted(
                ts=start, run_id=run_id, session_id=sid, role=role, cycle=cycle, backend="scripted", model="m-1"
            )
        )
        self.ledger.append(
            SessionEnded(
                ts=start + timedelta(minutes=minutes),
                run_id=run_id,
                session_id=sid,
                role=role,
                cycle=cycle,
                status=status,
                turns=3,
                usage=usage,
                cost_usd=cost,
                summary=summary,
            )
        )
        return sid

    def commit(self, branch: str, plan: str, run_id: str, cycle: int, when: datetime) -> str:
        path = self.root / f"plan-{plan}.txt"
        path.write_text(path.read_text() + f"{run_id} cycle {cycle}\n" if path.exists() else f"{run_id}\n")
        git(self.root, "add", path.name)
        git(
            self.root,
            "commit",
            "-q",
            "-m",
            f"plan {plan}: cycle {cycle}",
            "--trailer",
            f"Agentflow-Plan: {plan}",
            "--trailer",
            f"Agentflow-Run: {run_id}",
            "--trailer",
            f"Agentflow-Cycle: {cycle}",
            when=when,
        )
        return git(self.root, "rev-parse", "HEAD")

    def run(
        self,
        plan: str,
        title: str,
        run_id: str,
        start: datetime,
        cycles: list[Cycle],
        end_outcome: str,
        estimate: float | None,
    ) -> datetime:
        """A build run: per cycle a builder session, a commit, checks, a verifier session and a verdict."""
        branch = f"agentflow/{plan}"
        if self.repo.branch_exists(branch):
            git(self.root, "checkout", "-q", branch)
        else:
            git(self.root, "checkout", "-q", "-b", branch, "main")
        self.ledger.append(
            RunStarted(
                ts=start,
                run_id=run_id,
                plan_id=plan,
                plan_title=title,
                estimate_hours=estimate,
                branch=branch,
                base="main",
                max_cycles=3,
            )
        )
        t = start
        for n, cycle in enumerate(cycles, start=1):
            self.session(
                run_id,
                "builder",
                n,
                t,
                20,
                cycle.builder_cost,
                BUILDER_USAGE,
                summary=f"Implemented plan {plan}, cycle {n}",
            )
            commit = self.commit(branch, plan, run_id, n, t + timedelta(minutes=25))
            self.ledger.append(
                BuilderCommitted(
                    ts=t + timedelta(minutes=25),
                    run_id=run_id,
                    cycle=n,
                    commit=commit,
                    files_changed=1,
                    insertions=n,
                    deletions=0,
                )
            )
            self.ledger.append(
                ChecksRan(
                    ts=t + timedelta(minutes=27),
                    run_id=run_id,
                    cycle=n,
                    commit=commit,
                    results=[CheckResult(command="pytest -q", exit_code=0, duration_s=1.5)],
                )
            )
            self.session(
                run_id,
                "verifier",
                n,
                t + timedelta(minutes=28),
                2 if n == len(cycles) else 30,
                cycle.verifier_cost,
                VERIFIER_USAGE,
                status=cycle.verifier_status,
            )
            verdict_ts = t + timedelta(minutes=30 if n == len(cycles) else 58)
            self.verdict(run_id, plan, n, commit, cycle, verdict_ts, start, estimate)
            t += timedelta(hours=1)
        end = self.last_verdict_ts + timedelta(minutes=1)
        self.ledger.append(
            RunEnded(
                ts=end,
                run_id=run_id,
                outcome=end_outcome,
                cycles=len(cycles),
                reason=f"ended {end_outcome}",
                commit=self.repo.rev("HEAD"),
            )
        )
        git(self.root, "checkout", "-q", "main")
        return end

    def verdict(
        self,
        run_id: str,
        plan: str,
        n: int,
        commit: str,
        cycle: Cycle,
        ts: datetime,
        start: datetime,
        estimate: float | None,
    ) -> None:
        self.last_verdict_ts = ts
        decision = {"approved": "approve", "changes_requested": "request_changes", "rejected": "reject"}.get(
            cycle.outcome
        )
        verdict = (
            None
            if cycle.outcome == "no_verdict"
            else {
                "decision": decision,
                "summary": f"cycle {n} of plan {plan}",
                "criteria": [
                    {"id": "AC1", "status": "met" if cycle.outcome == "approved" else "unmet", "evidence": "tests"}
                ],
                "findings": cycle.findings,
            }
        )
        self.ledger.append(
            VerdictRecorded(
                ts=ts, run_id=run_id, cycle=n, commit=commit, outcome=cycle.outcome, decision=decision, verdict=verdict
            )
        )
        extra = {"run_started": start.isoformat(), "estimate_hours": estimate} if self.note_extensions else {}
        note = VerdictNote(
            plan=plan,
            run=run_id,
            outcome=cycle.outcome,
            decision=decision,
            tree=self.repo.tree(commit),
            findings=cycle.findings,
            ts=ts.isoformat(timespec="seconds"),
            **extra,
        )
        self.repo.append_note(commit, note.to_line())


def build_history(root: Path, *, note_extensions: bool = False) -> History:
    """The whole story of the module docstring, in the repository at ``root`` (branch main)."""
    ledger = Ledger.open(root)
    h = History(root, ledger, note_extensions)
    # previous period
    h.run("100", "Seed the ledger", "r-100a", at(10, 9), [Cycle(1.00, 0.50, "approved")], "approved", 8)
    ledger.append(FindingsRecorded(ts=at(10, 15), findings=[{"id": "E1"}, {"id": "E4"}]))
    # this period
    h.run(
        "101",
        "Add capsule_id to RoleAssignment",
        "r-101a",
        at(16, 9),
        [Cycle(1.00, 0.50, "approved", [finding("F1", "low", "naming")])],
        "approved",
        16,
    )
    git(root, "merge", "-q", "--no-ff", "-m", "Merge plan 101", "agentflow/101", when=at(16, 12))
    ledger.append(
        Merged(
            ts=at(16, 12),
            run_id="r-101a",
            plan_id="101",
            branch="agentflow/101",
            into="main",
            commit=h.repo.rev("HEAD"),
        )
    )
    h.run(
        "102",
        "Enforce tenant scoping",
        "r-102a",
        at(17, 9),
        [
            Cycle(
                2.00,
                0.80,
                "changes_requested",
                [finding("F1", "high", "capsule-isolation"), finding("F2", "medium", "capsule-isolation")],
            ),
            Cycle(1.20, 0.60, "approved", [finding("F2", "medium", "capsule-isolation"), finding("F3", "low", None)]),
        ],
        "approved",
        8,
    )
    h.run(
        "103",
        "Rate limiting",
        "r-103a",
        at(18, 9),
        [Cycle(1.00, 0.40, "changes_requested", [finding("F1", "high", "api-errors")]) for _ in range(3)],
        "capped",
        None,
    )
    h.run(
        "104",
        "Drop the legacy endpoint",
        "r-104a",
        at(19, 9),
        [Cycle(0.50, 0.10, "no_verdict", verifier_status="failed")],
        "no_verdict",
        4,
    )
    h.run(
        "104",
        "Drop the legacy endpoint",
        "r-104b",
        at(20, 9),
        [Cycle(0.70, 0.30, "rejected", [finding("F1", "critical", "backwards-compat")])],
        "rejected",
        4,
    )
    h.session(None, "evaluator", 1, at(21, 9), 10, 0.25, EVALUATOR_USAGE)
    ledger.append(FindingsRecorded(ts=at(21, 9, 10), findings=[{"id": "E1"}, {"id": "E2"}, {"id": "E3"}]))
    # a human override of plan 103's last commit
    last_103 = h.repo.rev("agentflow/103")
    ledger.append(
        VerdictRecorded(
            ts=at(21, 14),
            run_id="r-103a",
            cycle=0,
            commit=last_103,
            outcome="approved",
            decision="override",
            reason="hotfix",
            override=True,
        )
    )
    note = VerdictNote(
        plan="103",
        run="r-103a",
        outcome="approved",
        decision="override",
        tree=h.repo.tree(last_103),
        override=True,
        reason="hotfix",
        by="Dev",
        ts=at(21, 14).isoformat(timespec="seconds"),
    )
    h.repo.append_note(last_103, note.to_line())
    # a human commit without trailers does not count
    (root / "notes.txt").write_text("human\n")
    git(root, "add", "notes.txt")
    git(root, "commit", "-q", "-m", "human change", when=at(18, 15))
    ledger.close()
    return h


PERIOD_ARGS = ("--since", "2026-11-16", "--until", "2026-11-22")
