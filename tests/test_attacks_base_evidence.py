"""Attacks on the base's test counts that ``verify`` compares a change's JUnit evidence with.

Without ``--compare-base`` the counts come from the verdict notes on the base commit, and notes are
writable by whoever can push them. With a signing key, an unsigned line appended to main's note that
claims the check ran no test on the base made a change that stops most tests from being collected
look like no regression at all: the ``test_evidence_regressed`` finding (high) was gone.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.build_helpers import verifier_session, write_script
from tests.gate_helpers import note_for
from tests.helpers import git

KEY = "team-secret-signing-key-0123-0123456789abcdef0123456789"
CHECK = "cp counts.xml {report}"


def _counts(root: Path, tests: int) -> None:
    (root / "counts.xml").write_text(f'<testsuite tests="{tests}" failures="0" errors="0" skipped="0"/>\n')


def _append_note(root: Path, commit: str, line: str) -> None:
    current = git(root, "notes", "--ref=refs/notes/agentflow", "show", commit, check=False)
    body = (current + "\n" if current else "") + line + "\n"
    subprocess.run(
        ["git", "notes", "--ref=refs/notes/agentflow", "add", "-f", "-F", "-", commit],
        cwd=root,
        input=body,
        text=True,
        check=True,
    )


def _checks(tests: int) -> list[dict]:
    return [{"command": CHECK, "junit": True, "tests": tests, "failures": 0, "errors": 0, "skipped": 0}]


def test_an_unsigned_note_on_the_base_cannot_erase_its_test_counts(repo: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    _counts(repo, 5)
    (repo / "agentflow.yaml").write_text(yaml.safe_dump({"checks": [{"run": CHECK, "junit": True}]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    base = git(repo, "rev-parse", "HEAD")
    signed = note_for(repo, base, key=KEY, checks=_checks(5), ts="2026-01-01T00:00:00+00:00")
    _append_note(repo, base, signed.to_line())
    forged = note_for(repo, base, checks=_checks(0), ts="2026-01-02T00:00:00+00:00")  # unsigned, newer
    _append_note(repo, base, forged.to_line())
    git(repo, "checkout", "-q", "-b", "feature")
    _counts(repo, 1)
    (repo / "app.py").write_text("X = 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})

    result = cli("verify", "--base", "main", "--format", "json", "--script", str(script))

    data = json.loads(result.stdout)
    hits = [f for f in data["findings"] if f.get("rule") == "test_evidence_regressed"]
    assert hits and "1 test(s) against 5 on the base" in hits[0]["message"], data["findings"]
    assert result.exit_code == 1
