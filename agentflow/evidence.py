"""Checks with evidence: JUnit XML reports read after a check ran, and base comparison.

A check declared ``{run: "pytest -q --junitxml={report}", junit: true}`` must leave a JUnit report at
the path agentflow substitutes for ``{report}``. The report decides as much as the exit code: a
report with failures or errors fails the check whatever its exit code, one that ran no test fails
("ran no test"), a missing or unparsable report fails. Its counts (tests, failures, errors, skipped)
travel with the check result into the verdict, the note, every report format and ``show``.

``regressions`` compares the counts with the base commit's (from an earlier verdict note on the
base, or ``verify --compare-base``): fewer tests, or more skipped, is a finding.
"""

from __future__ import annotations

import os
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_PLACEHOLDER = "{report}"
COUNT_KEYS = ("tests", "failures", "errors", "skipped")
RULE = "test_evidence_regressed"
RULE_DOC = "a JUnit check ran fewer tests, or skipped more, than on the base"
MAX_REPORT_BYTES = 50_000_000


@dataclass(frozen=True)
class Counts:
    tests: int
    failures: int
    errors: int
    skipped: int

    def as_dict(self) -> dict[str, int]:
        return {"tests": self.tests, "failures": self.failures, "errors": self.errors, "skipped": self.skipped}


def substitute(command: str, report: Path) -> str:
    """``command`` with every ``{report}`` replaced by the shell-quoted ``report`` path."""
    return command.replace(REPORT_PLACEHOLDER, shlex.quote(str(report)))


def _int(value: str | None) -> int:
    try:
        return max(0, int(float(value))) if value not in (None, "") else 0
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def _suite_counts(suite: ET.Element) -> Counts:
    """A ``<testsuite>``'s counts: its attributes, or (when they are absent) its ``<testcase>`` children."""
    cases = suite.findall("testcase")
    if suite.get("tests") is None:
        return Counts(
            tests=len(cases),
            failures=sum(1 for c in cases if c.find("failure") is not None),
            errors=sum(1 for c in cases if c.find("error") is not None),
            skipped=sum(1 for c in cases if c.find("skipped") is not None),
        )
    return Counts(
        tests=_int(suite.get("tests")),
        failures=_int(suite.get("failures")),
        errors=_int(suite.get("errors")),
        skipped=_int(suite.get("skipped") or suite.get("disabled")),
    )


def parse_junit(path: Path, within: Path | None = None) -> Counts:
    """The counts of the JUnit report at ``path``; ValueError (with the reason) when it is missing or bad.

    Handles a ``<testsuites>`` root (the suites are summed; nested suites are counted once, at the
    innermost level that carries test cases) and a single ``<testsuite>`` root. ``within``: a folder
    the check could not replace (its checkout); the folders below it and the report are opened
    without following a symbolic link (``read_report``).
    """
    data = read_report(path, within)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("the JUnit report declares a DTD or entities (refused)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"the JUnit report is not valid XML ({exc})") from None
    if root.tag == "testsuite":
        return _suite_counts(root)
    if root.tag != "testsuites":
        raise ValueError(f"the JUnit report's root is <{root.tag}>, not <testsuites> or <testsuite>")
    suites = [s for s in root.iter("testsuite") if s.find("testsuite") is None]
    totals = [_suite_counts(s) for s in suites]
    return Counts(*(sum(getattr(t, key) for t in totals) for key in COUNT_KEYS))


def read_report(path: Path, within: Path | None = None) -> bytes:
    """A report's bytes, opened as the check that wrote it cannot redirect: the check runs the change's
    code, which may leave a symbolic link to a host file its sandbox hides (agentflow, outside the
    sandbox, would read it), a FIFO (a plain read waits forever) or a device there. Only a regular
    file counts, every component below ``within`` is opened with ``O_NOFOLLOW``, the read is bounded."""
    import errno
    import stat

    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    not_regular = ValueError("the JUnit report is not a regular file (a symbolic link, FIFO or device: refused)")
    fds: list[int] = []
    try:
        if within is not None:
            parts = path.relative_to(within).parts
            fds.append(os.open(within, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            for part in parts[:-1]:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fds[-1]))
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fds[-1])
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | nofollow)
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular
        if info.st_size > MAX_REPORT_BYTES:
            raise ValueError(f"the report is larger than {MAX_REPORT_BYTES // 1_000_000} MB")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_REPORT_BYTES:
                raise ValueError(f"the report is larger than {MAX_REPORT_BYTES // 1_000_000} MB")
        return b"".join(chunks)
    except FileNotFoundError:
        raise ValueError("the check wrote no JUnit report") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise not_regular from None
        raise ValueError(f"the JUnit report cannot be read: {exc.strerror or exc}") from None
    finally:
        for fd in fds:
            os.close(fd)


def judge(counts: Counts) -> str | None:
    """Why a report fails its check (None when it passes)."""
    if counts.failures or counts.errors:
        return f"the report holds {counts.failures} failure(s) and {counts.errors} error(s)"
    if counts.tests == 0:
        return "ran no test"
    if counts.skipped >= counts.tests:
        return "ran no test (every test was skipped)"
    return None


def counts_of(check: Mapping[str, Any]) -> Counts | None:
    """The counts a check dict (ledger, note, report) carries, if it had evidence."""
    if not check.get("junit") or check.get("tests") is None:
        return None
    try:
        return Counts(*(int(check.get(key) or 0) for key in COUNT_KEYS))
    except (TypeError, ValueError):
        return None


def base_counts_from_notes(notes: Iterable[Mapping[str, Any]]) -> dict[str, Counts]:
    """``command -> counts`` from the verdict notes on the base commit (the newest note wins)."""
    found: dict[str, Counts] = {}
    for note in notes:
        for check in note.get("checks") or []:
            if isinstance(check, Mapping) and (counts := counts_of(check)) is not None:
                found[str(check.get("command"))] = counts
    return found


def finding_id(rule: str, where: str) -> str:
    from agentflow.rules import finding_id as rule_finding_id

    return rule_finding_id(rule, where)


def regressions(checks: Sequence[Mapping[str, Any]], base: Mapping[str, Counts], source: str) -> list[dict[str, Any]]:
    """Findings (DESIGN.md shape plus ``rule``) for checks that ran fewer tests or skipped more than on base."""
    found = []
    for check in checks:
        counts, before = counts_of(check), base.get(str(check.get("command")))
        if counts is None or before is None:
            continue
        problems = []
        if counts.tests < before.tests:
            problems.append(f"{counts.tests} test(s) against {before.tests} on the base")
        if counts.skipped > before.skipped:
            problems.append(f"{counts.skipped} skipped against {before.skipped} on the base")
        if problems:
            command = str(check.get("command"))
            found.append(
                {
                    "id": finding_id(RULE, command),
                    "severity": "high",
                    "file": None,
                    "line": None,
                    "pattern": RULE,
                    "rule": RULE,
                    "message": f"`{command}` ran {' and '.join(problems)} ({source})",
                    "suggestion": "restore the tests; a human may override with `agentflow approve --override`",
                }
            )
    return found
