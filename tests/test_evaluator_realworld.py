"""The evaluator on real event logs nobody here wrote (``../shared/realworld-events``, see its
SOURCES.md) and on planted variants of them made at run time (issue #16).

The corpora are read from beside the repository, never copied into it; under CI=true a missing
corpus fails the test (``helpers.shared_path``).

Precision is computed against a small labelled list per corpus: the findings at medium and above
that are *true* (a real inconsistency of the data's contract), decided by reading the data; the
reasons are in the comments. Any other finding at medium or above counts as a false positive.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.evaluator import RuleConfig, evaluate
from tests.helpers import shared_path

CORPORA = ["gharchive-pinot", "github-webhooks-octokit", "aws-eventbridge-samples", "a2b-cloudevents"]
SERIOUS = ("medium", "high", "critical")

# (rule, event type, field) of the true findings at medium and above, per corpus.
TRUE_FINDINGS: dict[str, set[tuple[str, str, str]]] = {
    # GH Archive: no medium+ finding is expected; all variation (payloads per event kind, nullable
    # objects such as payload.pull_request.milestone, optional `org`) is legitimate.
    "gharchive-pinot": set(),
    "github-webhooks-octokit": {
        # installation.created_at/updated_at are epoch integers in some installation payloads and
        # ISO strings in others: the same field with two JSON types is a real contract break.
        ("type_mismatch", "installation", "installation.created_at"),
        ("type_mismatch", "installation", "installation.updated_at"),
        # package_version.body is an object in one package example and a string in the other.
        ("type_mismatch", "package", "package.package_version.body"),
        # The pull_request object of review comments lacks `draft`, which the pull_request object
        # of the other pull_request* events carries: one entity, two shapes.
        ("missing_sibling_field", "pull_request_review_comment", "pull_request.draft"),
        # The repository object of these events lacks `disabled`, which the repository object of
        # the other events of the family carries: the same entity object, an older shape.
        ("missing_sibling_field", "repository_dispatch", "repository.disabled"),
        ("missing_sibling_field", "repository_import", "repository.disabled"),
        ("missing_sibling_field", "workflow_dispatch", "repository.disabled"),
        # `workflow` is a path string in workflow_dispatch and an object in workflow_run/workflow_job.
        ("type_mismatch_across_types", "workflow_dispatch", "workflow"),
        # With `repository` configured as the isolation field, events without it are by that
        # configuration unscoped (an organization hook's ping, team events): true.
        ("partial_field", "ping", "repository"),
        ("partial_field", "team", "repository"),
    },
    # EventBridge samples: one sample per detail-type of many AWS services; the payloads differ by
    # design, nothing at medium+ is true.
    "aws-eventbridge-samples": set(),
    "a2b-cloudevents": {
        # With agency_identification configured as the isolation field, an assetsync.update and a
        # registration.received event without it are unscoped events of a multi-tenant app: true.
        ("partial_field", "com.adobe.a2b.assetsync.update", "agency_identification"),
        ("partial_field", "com.adobe.a2b.registration.received", "agency_identification"),
    },
}

# The scope a team would configure for each corpus (a leaf, a path inside the object, the object).
CONFIGURED_SCOPE = {
    "gharchive-pinot": ["repo.id"],
    "github-webhooks-octokit": ["repository"],
    "aws-eventbridge-samples": ["account"],  # in the envelope only: a warning, not a finding
    "a2b-cloudevents": ["agency_identification"],
}


def corpus(name: str) -> Path:
    return shared_path(f"realworld-events/{name}/events.jsonl")


def precision(name: str, findings) -> float:
    serious = [f for f in findings if f.severity in SERIOUS]
    if not serious:
        return 1.0
    true = [f for f in serious if (f.rule, f.event_type, f.field) in TRUE_FINDINGS[name]]
    return len(true) / len(serious)


def planted(tmp_path: Path, name: str, edit) -> Path:
    """A copy of a corpus with ``edit(event)`` applied to every event (made at run time, in tmp)."""
    out = tmp_path / f"{name}-planted.jsonl"
    with corpus(name).open("rb") as source, out.open("w", encoding="utf-8") as sink:
        for line in source:
            if line.strip():
                event = json.loads(line)
                edit(event)
                sink.write(json.dumps(event) + "\n")
    return out


@pytest.mark.parametrize("name", CORPORA)
def test_default_config_no_serious_finding_and_precision(name):
    analysis = evaluate([corpus(name)])
    serious = [
        (f.severity, f.rule, f.event_type, f.field) for f in analysis.findings if f.severity in ("high", "critical")
    ]
    assert serious == []  # legitimate variation: nothing that fails the default --fail-on high
    assert precision(name, analysis.findings) >= 0.8
    assert sum(t.count + t.unanalysed for t in analysis.types) == analysis.events  # totals match the input


@pytest.mark.parametrize("name", CORPORA)
def test_configured_scope_precision(name):
    analysis = evaluate([corpus(name)], rules=RuleConfig(isolation_fields=CONFIGURED_SCOPE[name]))
    assert precision(name, analysis.findings) >= 0.8, [
        (f.rule, f.event_type, f.field) for f in analysis.findings if f.severity in SERIOUS
    ]
    if name == "aws-eventbridge-samples":
        assert analysis.warnings and "account" in analysis.warnings[0]


@pytest.mark.parametrize("scope", [None, ["repo"], ["repo.id"]])
def test_gharchive_issues_without_repo_is_critical(tmp_path, scope):
    """The tenant leak the evaluator exists for: every IssuesEvent lacks `repo`. Found with the
    default config (inferred scope), and with the object or a path inside it configured."""

    def drop(event):
        if event["type"] == "IssuesEvent":
            del event["repo"]

    log = planted(tmp_path, "gharchive-pinot", drop)
    rules = RuleConfig(isolation_fields=scope) if scope else None
    analysis = evaluate([log], rules=rules)
    found = [(f.severity, f.event_type, f.field) for f in analysis.findings if f.severity in ("high", "critical")]
    assert found == [("critical", "IssuesEvent", "repo")]
    assert "repo" in analysis.inferred_scope


def test_cloudevents_type_without_tenant_field_is_critical(tmp_path):
    def drop(event):
        if event["type"] == "com.adobe.a2b.workfront.task.created":
            event["data"].pop("agency_identification", None)

    analysis = evaluate([planted(tmp_path, "a2b-cloudevents", drop)])
    found = [(f.severity, f.event_type, f.field) for f in analysis.findings if f.severity in ("high", "critical")]
    assert found == [("critical", "com.adobe.a2b.workfront.task.created", "agency_identification")]


def test_cli_prints_inferred_scope_and_unmatched_field_warning(cli, tmp_path):
    result = cli("evaluate", str(corpus("gharchive-pinot")), "--no-record")
    assert result.exit_code == 0
    assert "isolation fields: tenant_id, capsule_id; inferred scope: org, repo" in result.output
    assert "warning: isolation field tenant_id (events.isolation_fields) matches no field" in result.output


def test_baseline_of_first_half_on_second_half_reports_no_removed_children_of_null_objects(tmp_path):
    lines = corpus("gharchive-pinot").read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "h1.jsonl", tmp_path / "h2.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]))
    from agentflow.evaluator.baseline import baseline_of

    baseline = baseline_of(evaluate([first]))
    drift = evaluate([second], baseline=baseline).findings
    assert [f for f in drift if f.rule == "drift_field_removed" and f.severity in SERIOUS] == []
