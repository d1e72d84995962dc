"""Remediation plans: one plan file per group of high/critical findings, ready for ``agentflow build``.

Findings are grouped by what fixing them means: every finding that says "events lack field F"
(``missing_sibling_field``, ``required_field``, ``partial_field``, ``null_field``,
``drift_field_removed``) for the same field becomes one plan "Add F to A and B"; key-segment
findings for the same segment become "Add the CAPSULE# key segment to ..."; type findings for the
same field become "Give F one JSON type in ...". Each plan has one acceptance criterion per affected
event type.

Plans are written as ``DIR/<id>-<slug>.md`` with the next free numeric id in DIR and the slug
``plans.title_slug`` gives (so the file name and the branch ``agentflow/<id>-<slug>`` agree). A plan
whose title already exists in DIR is not written again, so re-running ``--plan-out`` is idempotent.

A plan names the CLAUDE.md patterns that concern its group, so the builder and verifier get them
for sure instead of by word overlap; the Context says which matched and why. The rule is explicit:
a pattern whose id or title names the subject (``capsule`` for ``capsule_id`` or ``CAPSULE#``) or,
for an isolation field, ``isolation``; when no title does, a pattern whose text names the field or
the key segment verbatim. No pattern matches: ``patterns: []``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.errors import UsageError
from agentflow.evaluator.analysis import Finding
from agentflow.evaluator.rules import RuleConfig
from agentflow.patterns import Pattern, words
from agentflow.plans import title_slug
from agentflow.verdict import severity_rank  # one severity scale for verdicts and evaluator

_ADD = ("missing_sibling_field", "required_field", "partial_field", "null_field", "drift_field_removed")
_KEY = ("key_segment_missing", "key_template_inconsistent")
_TYPE = ("type_mismatch", "drift_type_changed")


@dataclass
class PlanGroup:
    action: str  # add | key | type
    subject: str  # field leaf name or key segment
    findings: list[Finding] = field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        return sorted({f.event_type for f in self.findings})

    @property
    def severity(self) -> str:
        return max((f.severity for f in self.findings), key=severity_rank)

    @property
    def title(self) -> str:
        names = _join(self.event_types)
        if self.action == "add":
            return f"Add {self.subject} to {names}"
        if self.action == "key":
            return f"Add the {self.subject} key segment to {names}"
        return f"Give {self.subject} one JSON type in {names}"


@dataclass(frozen=True)
class PatternMatch:
    """A CLAUDE.md pattern named by a plan, and why."""

    pattern: Pattern
    reason: str


def _segment(group: PlanGroup) -> str | None:
    """The key segment the group is about (``CAPSULE#``), from the subject or the key evidence."""
    if group.action == "key":
        return group.subject if group.subject.endswith("#") else None
    for finding in group.findings:
        templates = finding.evidence.get("key_templates")
        if isinstance(templates, dict) and isinstance(templates.get("segment"), str):
            return templates["segment"]
    return None


def _is_isolation(group: PlanGroup, rules: RuleConfig) -> bool:
    if group.action == "key":
        return rules.label_field(group.subject.rstrip("#")) is not None
    return rules.is_isolation(group.subject)


def match_patterns(group: PlanGroup, patterns: list[Pattern], rules: RuleConfig | None = None) -> list[PatternMatch]:
    """The patterns that concern ``group`` (see the module docstring for the rule), in document order."""
    rules = rules or RuleConfig()
    subject_words = set(words(group.subject.rstrip("#")))
    isolation = _is_isolation(group, rules)
    wanted = subject_words | ({"isolation"} if isolation else set())
    by_title: list[PatternMatch] = []
    for pattern in patterns:
        shared = sorted(wanted & set(words(f"{pattern.id} {pattern.title}")))
        if shared:
            by_title.append(PatternMatch(pattern, f"its title names {' and '.join(shared)}"))
    if by_title:
        return by_title
    literals = [group.subject] if group.action != "key" else []
    if (segment := _segment(group)) is not None:
        literals.append(segment)
    by_text: list[PatternMatch] = []
    for pattern in patterns:
        named = [text for text in literals if _mentions(pattern.body, text)]
        if named:
            by_text.append(PatternMatch(pattern, f"its text names {' and '.join(f'`{t}`' for t in named)}"))
    return by_text


def _mentions(body: str, literal: str) -> bool:
    """``literal`` in ``body`` as a whole word (``capsule_id`` does not match ``capsule_ids``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(literal)}(?![A-Za-z0-9_])", body) is not None


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} more event types"
    return f"{', '.join(names[:-1])} and {names[-1]}"


def group_findings(findings: list[Finding], minimum: str = "high") -> list[PlanGroup]:
    """Groups of the findings at or above ``minimum`` (deterministic order: severity, title)."""
    groups: dict[tuple[str, str], PlanGroup] = {}
    for finding in findings:
        if severity_rank(finding.severity) < severity_rank(minimum):
            continue
        if "collapsed" in finding.evidence:
            continue  # stands for the findings past the cap (caps.py): no one field to plan for
        if finding.rule in _KEY:
            segment = str(finding.evidence.get("segment") or finding.field or "key")
            key = ("key", segment)
        elif finding.rule in _TYPE:
            key = ("type", (finding.field or "").rsplit(".", 1)[-1])
        else:
            key = ("add", (finding.field or "").rsplit(".", 1)[-1])
        groups.setdefault(key, PlanGroup(*key)).findings.append(finding)
    return sorted(groups.values(), key=lambda g: (-severity_rank(g.severity), g.title))


def _existing(directory: Path) -> tuple[int, set[str]]:
    """The largest numeric plan id and the titles of the plans in ``directory``."""
    largest, titles = 0, set()
    for path in sorted(directory.glob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        front = text.split("\n---", 1)[0] if text.startswith("---") else ""
        ident = re.search(r"^id:\s*['\"]?(\d+)['\"]?\s*$", front, re.M)
        number = ident.group(1) if ident else (re.match(r"(\d+)-", path.name) or [None, None])[1]
        if number:
            largest = max(largest, int(number))
        title = re.search(r"^title:\s*(.+?)\s*$", front, re.M)
        if title:
            titles.add(title.group(1).strip("'\""))
    return largest, titles


def _criterion(group: PlanGroup, event_type: str, logs: list[str]) -> str:
    where = " ".join(logs) if logs else "<logs>"
    if group.action == "add":
        return (
            f"every {event_type} event carries a non-null `{group.subject}` (a test that builds the event "
            f"and checks the field), and `agentflow evaluate {where}` on new logs reports no "
            f"`{group.subject}` finding for {event_type}"
        )
    if group.action == "key":
        return (
            f"the keys written for {event_type} contain the `{group.subject}` segment like its siblings' "
            f"(a test on the generated key)"
        )
    return f"`{group.subject}` has a single JSON type in every {event_type} event (a serialisation test)"


def render_plan(
    group: PlanGroup,
    plan_id: int,
    logs: list[str],
    matches: list[PatternMatch] | None = None,
    patterns_file: str | None = None,
) -> str:
    """The plan text; ``matches`` are the patterns to name, ``patterns_file`` the CLAUDE.md they came
    from (None: no patterns file was read, so the Context does not mention patterns)."""
    matches = matches or []
    hours = 2 * len(group.event_types) + 2
    lines = [
        "---",
        f"id: {plan_id}",
        f"title: {json.dumps(group.title)}",
        "status: ready",
        f"patterns: [{', '.join(json.dumps(m.pattern.id) for m in matches)}]",
        f"estimate: {hours}h",
        "---",
        "## Context",
        "",
        f"`agentflow evaluate` found {len(group.findings)} {group.severity}-severity finding(s) in "
        f"{', '.join(logs) or 'the event logs'}:",
        "",
    ]
    for f in group.findings:
        samples = f.evidence.get("sample_lines") or f.evidence.get("sample_lines_missing") or []
        sample_text = f" (e.g. {', '.join(map(str, samples[:3]))})" if isinstance(samples, list) and samples else ""
        lines.append(f"- {f.id} [{f.severity}] {f.rule}: {f.message}{sample_text}")
    if matches:
        lines += ["", f"Patterns from {patterns_file or 'CLAUDE.md'} that apply:", ""]
        lines += [f"- `{m.pattern.id}` ({m.pattern.title}): {m.reason}." for m in matches]
    elif patterns_file is not None:
        lines += [
            "",
            f"No pattern in {patterns_file} names `{group.subject}`; agentflow picks relevant ones "
            "when the plan is built.",
        ]
    lines += ["", "## Requirements", ""]
    for number, event_type in enumerate(group.event_types, start=1):
        if group.action == "add":
            lines.append(
                f"{number}. Every {event_type} event MUST carry `{group.subject}`, set from the same "
                f"source as its sibling events."
            )
        elif group.action == "key":
            lines.append(f"{number}. Keys written for {event_type} MUST include the `{group.subject}` segment.")
        else:
            lines.append(f"{number}. `{group.subject}` in {event_type} events MUST always have one JSON type.")
    lines += ["", "## Acceptance criteria", ""]
    for number, event_type in enumerate(group.event_types, start=1):
        lines.append(f"- AC{number}: {_criterion(group, event_type, logs)}.")
    return "\n".join(lines) + "\n"


def write_plans(
    findings: list[Finding],
    directory: Path,
    logs: list[str],
    minimum: str = "high",
    *,
    patterns: list[Pattern] | None = None,
    rules: RuleConfig | None = None,
    patterns_file: str | None = None,
) -> list[Path]:
    """Write one plan per finding group into ``directory``; returns the paths written.

    ``logs`` are the log names as the plan's acceptance criteria should quote them (relative to the
    repository root). ``patterns`` (from CLAUDE.md) are matched per group by ``match_patterns``.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        largest, titles = _existing(directory)
    except OSError as exc:
        raise UsageError(f"cannot use the plan folder: {exc.strerror}", where=directory) from None
    written: list[Path] = []
    for group in group_findings(findings, minimum):
        if group.title in titles:
            continue
        largest += 1
        path = directory / f"{largest}-{title_slug(group.title)}.md"
        matches = match_patterns(group, patterns or [], rules)
        text = render_plan(group, largest, logs, matches, patterns_file if patterns else None)
        _validate(text, path)
        path.write_text(text, encoding="utf-8")
        titles.add(group.title)
        written.append(path)
    return written


def _validate(text: str, path: Path) -> None:
    """Check the plan with the plan parser when it is available (it is the contract)."""
    try:
        from agentflow.plans import parse_plan
    except ImportError:  # pragma: no cover - the plans module ships with agentflow
        return
    parse_plan(text, path)
