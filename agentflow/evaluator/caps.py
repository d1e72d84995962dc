"""Bounded findings: at most ``MAX_PER_RULE_AND_TYPE`` findings of one rule for one event type.

A log whose events keep bringing new keys (a map the reader could not recognise: too few events
of the type to tell) would otherwise report one ``partial_field`` per key: 400,000 findings for
7 MB. Past the cap, the rest of a (rule, type) pair become one finding that counts them, names a
few of their fields and takes the highest severity among them, so ``--fail-on`` still sees them.
"""

from __future__ import annotations

from agentflow.evaluator.analysis import Finding
from agentflow.evaluator.rules import finding_id, sort_findings
from agentflow.verdict import severity_rank

MAX_PER_RULE_AND_TYPE = 100  # findings of one rule for one event type listed one by one (real logs: up to 53)
EXAMPLE_FIELDS = 5  # fields named in the finding that stands for the rest


def cap_findings(findings: list[Finding], cap: int = MAX_PER_RULE_AND_TYPE) -> list[Finding]:
    """``findings`` (sorted) with each (rule, event type) past ``cap`` collapsed into one finding."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.rule, finding.event_type), []).append(finding)
    if all(len(group) <= cap for group in groups.values()):
        return findings
    out: list[Finding] = []
    for (rule, event_type), group in groups.items():
        if len(group) <= cap:
            out += group
            continue
        ordered = sorted(group, key=lambda f: (-severity_rank(f.severity), f.field or "", f.id))
        kept, rest = ordered[:cap], ordered[cap:]
        severities: dict[str, int] = {}
        for f in rest:
            severities[f.severity] = severities.get(f.severity, 0) + 1
        top = max(severities, key=severity_rank)
        fields = [f.field for f in rest if f.field][:EXAMPLE_FIELDS]
        out += kept
        out.append(
            Finding(
                rule,
                top,
                event_type,
                None,
                f"{len(rest)} more {rule} findings for {event_type} (listed up to {cap} per rule and event type)"
                + (f", such as {', '.join(fields)}" if fields else ""),
                {
                    "events": rest[0].evidence.get("events"),
                    "collapsed": len(rest),
                    "severities": dict(sorted(severities.items(), key=lambda i: -severity_rank(i[0]))),
                    "fields": fields,
                },
                id=finding_id(rule, event_type, None, "collapsed"),
            )
        )
    return sort_findings(out)
