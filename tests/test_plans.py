"""Plan files: parsing, validation errors (exit 2, naming file and line or key), plan new / plan check."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.errors import PlanError
from agentflow.plans import branch_name, load_plan, load_plans, parse_estimate, parse_plan, resolve_plan

VALID = """\
---
id: 348
title: Enforce capsule isolation in DynamoDbEntity macro
status: ready
patterns: [capsule-isolation]
scope: ["crates/dynamo-macro/**"]
checks: ["cargo test -p dynamo-macro"]
max_cycles: 3
estimate: 2d
---
## Context
RoleAssignment entities lack a capsule_id.

## Requirements
1. Every entity MUST have a capsule_id field
2. The macro MUST reject entities without it
   at compile time

## Acceptance criteria
- AC1: compilation fails if capsule_id is missing
- AC2: existing entities compile unchanged
"""


def write(root: Path, name: str, text: str) -> Path:
    claude = root / "CLAUDE.md"  # VALID names the capsule-isolation pattern: plan check looks it up
    if not claude.exists():
        claude.write_text("# P\n\n## Capsule isolation\n\nEvery entity carries capsule_id.\n")
    path = root / ".plans" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def plan_text(front: str, body: str = "## Acceptance criteria\n- works\n") -> str:
    return f"---\n{front}---\n{body}"


def test_valid_plan_parses_every_field(repo):
    plan = load_plan(write(repo, "348-capsule-isolation.md", VALID))
    assert plan.id == "348"
    assert plan.title == "Enforce capsule isolation in DynamoDbEntity macro"
    assert plan.status == "ready"
    assert plan.patterns == ["capsule-isolation"]
    assert plan.scope == ["crates/dynamo-macro/**"]
    assert plan.checks == ["cargo test -p dynamo-macro"]
    assert plan.max_cycles == 3
    assert plan.estimate_hours == 16.0
    assert plan.context == "RoleAssignment entities lack a capsule_id."
    assert plan.requirements == [
        "Every entity MUST have a capsule_id field",
        "The macro MUST reject entities without it at compile time",
    ]
    assert [(c.id, c.text, c.line) for c in plan.criteria] == [
        ("AC1", "compilation fails if capsule_id is missing", 20),
        ("AC2", "existing entities compile unchanged", 21),
    ]
    assert plan.slug == "capsule-isolation"
    assert branch_name(plan) == "agentflow/348-capsule-isolation"
    assert "## Context" in plan.body and "id: 348" not in plan.body


def test_criteria_without_ids_are_numbered_in_order(tmp_path):
    body = "## Acceptance criteria\n\n1. first\n2. second\n   continued\n\n* third\n\n## Notes\n- not a criterion\n"
    plan = parse_plan(plan_text("id: 1\ntitle: T\n", body), tmp_path / "1-t.md")
    assert [(c.id, c.text) for c in plan.criteria] == [("AC1", "first"), ("AC2", "second continued"), ("AC3", "third")]


def test_criteria_in_code_blocks_are_ignored_and_bold_ids_read(tmp_path):
    body = "## Acceptance criteria\n- **AC7**: bold id\n```\n- AC9: inside a fence\n```\n"
    plan = parse_plan(plan_text("id: 1\ntitle: T\n", body), tmp_path / "1-t.md")
    assert [(c.id, c.text) for c in plan.criteria] == [("AC7", "bold id")]


def test_duplicate_criterion_id_is_an_error_with_line(tmp_path):
    body = "## Acceptance criteria\n- AC1: one\n- AC1: again\n"
    with pytest.raises(PlanError) as info:
        parse_plan(plan_text("id: 1\ntitle: T\n", body), tmp_path / "p.md")
    assert "p.md:7" in str(info.value) and "AC1 appears twice" in str(info.value)


def test_slug_falls_back_to_title(tmp_path):
    plan = parse_plan(plan_text("id: auth-refactor\ntitle: Refactor the Auth layer!\n"), tmp_path / "auth.md")
    assert plan.id == "auth-refactor"
    assert branch_name(plan) == "agentflow/auth-refactor-refactor-the-auth-layer"


@pytest.mark.parametrize(
    ("text", "hours"), [("6h", 6), ("2d", 16), ("1w", 40), ("1.5d", 12), ("1w 2d", 56), ("3D", 24)]
)
def test_parse_estimate(text, hours):
    assert parse_estimate(text) == hours


@pytest.mark.parametrize("text", ["2x", "two days", "", "2d extra", 4, "0h"])
def test_parse_estimate_rejects_bad_input(text):
    with pytest.raises(PlanError):
        parse_estimate(text)


# -- bad input through the CLI: exit 2, one line naming the file and the line or key ---------------------

BAD_CASES = {
    "missing front matter": ("# Just a title\n", ["1-p.md:1", "missing front matter"]),
    "unclosed front matter": ("---\nid: 1\ntitle: T\n", ["1-p.md:1", "not closed"]),
    "malformed yaml": ("---\nid: 1\ntitle: T\nscope: [a, b\n---\nbody\n", ["1-p.md:", "malformed YAML"]),
    "unknown key": ("---\nid: 1\ntitle: T\nscop: [src/**]\n---\n", ["1-p.md:4", "scop: unknown key", "`scope`"]),
    "missing id": ("---\ntitle: T\n---\n", ["1-p.md", "id: missing"]),
    "missing title": ("---\nid: 1\n---\n", ["1-p.md", "title: missing"]),
    "bad estimate": ("---\nid: 1\ntitle: T\nestimate: 2 days\n---\n", ["1-p.md:4", "estimate", "2d"]),
    "estimate without unit": ("---\nid: 1\ntitle: T\nestimate: 3\n---\n", ["1-p.md:4", "no unit"]),
    "bad max_cycles": ("---\nid: 1\ntitle: T\nmax_cycles: 0\n---\n", ["1-p.md:4", "max_cycles"]),
    "bad status": ("---\nid: 1\ntitle: T\nstatus: done\n---\n", ["1-p.md:4", "status"]),
    "bad id": ("---\nid: 'a b'\ntitle: T\n---\n", ["1-p.md:2", "not a number or slug"]),
    "list of keys": ("---\n- id\n---\n", ["1-p.md:2", "YAML keys"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_plan_check_reports_bad_input(repo, cli, case):
    text, expected = BAD_CASES[case]
    write(repo, "1-p.md", text)
    result = cli("plan", "check")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("agentflow: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in expected:
        assert fragment in errors[0]
    assert "OK" not in result.stdout


def test_malformed_yaml_names_the_file_line(repo, cli):
    write(repo, "1-p.md", "---\nid: 1\ntitle: T\nscope: [a, b\nchecks: []\n---\n")
    result = cli("plan", "check")
    assert result.exit_code == 2
    assert ".plans/1-p.md:6" in result.stderr or ".plans/1-p.md:5" in result.stderr


def test_duplicate_ids_name_both_files(repo, cli):
    write(repo, "7-a.md", plan_text("id: 7\ntitle: A\n"))
    write(repo, "7-b.md", plan_text("id: 7\ntitle: B\n"))
    result = cli("plan", "check")
    assert result.exit_code == 2
    assert ".plans/7-a.md" in result.stderr and ".plans/7-b.md" in result.stderr
    assert "duplicate plan id '7'" in result.stderr
    with pytest.raises(PlanError, match="duplicate plan id"):
        load_plans(repo)


def test_checking_one_file_still_catches_a_duplicate_elsewhere(repo, cli):
    write(repo, "7-a.md", plan_text("id: 7\ntitle: A\n"))
    other = repo / "elsewhere.md"
    other.write_text(plan_text("id: 7\ntitle: B\n"))
    result = cli("plan", "check", "elsewhere.md")
    assert result.exit_code == 2
    assert "elsewhere.md" in result.stderr and ".plans/7-a.md" in result.stderr


def test_plan_check_reports_every_bad_plan_and_oks_the_good(repo, cli):
    write(repo, "1-good.md", VALID.replace("id: 348", "id: 1"))
    write(repo, "2-bad.md", "---\nid: 2\n---\n")
    write(repo, "3-bad.md", "no front matter\n")
    result = cli("plan", "check")
    assert result.exit_code == 2
    assert "OK .plans/1-good.md" in result.stdout
    assert "2-bad.md" in result.stderr and "3-bad.md" in result.stderr


def test_plan_check_ok(repo, cli):
    write(repo, "348-capsule-isolation.md", VALID)
    result = cli("plan", "check")
    assert result.exit_code == 0, result.output
    assert "OK .plans/348-capsule-isolation.md: 348" in result.stdout
    assert "2 acceptance criteria" in result.stdout


def test_plan_without_criteria_passes_with_a_warning(repo, cli):
    write(repo, "1-x.md", "---\nid: 1\ntitle: T\n---\nJust prose.\n")
    result = cli("plan", "check")
    assert result.exit_code == 0
    assert "warning" in result.stderr and "no acceptance criteria" in result.stderr


def test_plan_check_without_plans_is_a_usage_error(repo, cli):
    result = cli("plan", "check")
    assert result.exit_code == 2
    assert "plan new" in result.stderr


def test_plan_check_missing_file(repo, cli):
    result = cli("plan", "check", "nope.md")
    assert result.exit_code == 2
    assert "nope.md: no such plan file" in result.stderr


def test_plan_check_outside_a_git_repo(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    result = cli("plan", "check")
    assert result.exit_code == 2
    assert "not a git repository" in result.stderr


# -- plan new --------------------------------------------------------------------------------------------


def test_plan_new_uses_next_free_id_and_writes_a_valid_plan(repo, cli):
    result = cli("plan", "new", "Add rate limiting: the API!")
    assert result.exit_code == 0, result.output
    path = repo / ".plans" / "1-add-rate-limiting-the-api.md"
    assert path.is_file()
    plan = load_plan(path)
    assert (plan.id, plan.title, plan.status) == ("1", "Add rate limiting: the API!", "draft")
    assert [c.id for c in plan.criteria] == ["AC1"]
    write(repo, "40-x.md", plan_text("id: 40\ntitle: X\n"))
    assert cli("plan", "new", "Next one").exit_code == 0
    assert (repo / ".plans" / "41-next-one.md").is_file()


def test_plan_new_with_id_and_refusals(repo, cli):
    assert cli("plan", "new", "Capsule isolation", "--id", "348").exit_code == 0
    path = repo / ".plans" / "348-capsule-isolation.md"
    before = path.read_text()
    again = cli("plan", "new", "Capsule isolation", "--id", "348")
    assert again.exit_code == 2 and "already used" in again.stderr
    assert path.read_text() == before
    assert cli("plan", "new", "Other", "--id", "bad id").exit_code == 2
    assert cli("plan", "new", "   ").exit_code == 2


def test_plan_new_refuses_to_overwrite_a_file(repo, cli):
    path = write(repo, "5-same-title.md", "not a valid plan, but the user's file\n")
    result = cli("plan", "new", "Same title", "--id", "5")
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert path.read_text() == "not a valid plan, but the user's file\n"


# -- resolving -------------------------------------------------------------------------------------------


def test_resolve_plan_by_path_id_and_stem(repo):
    write(repo, "348-capsule-isolation.md", VALID)
    assert resolve_plan(repo, ".plans/348-capsule-isolation.md").id == "348"
    assert resolve_plan(repo, "348").id == "348"
    assert resolve_plan(repo, "0348").id == "348"
    assert resolve_plan(repo, "348-capsule-isolation").id == "348"
    with pytest.raises(PlanError, match="known ids: 348"):
        resolve_plan(repo, "999")


def test_example_plans_of_this_repository_are_valid():
    folder = Path(__file__).resolve().parents[1] / "plans"
    paths = sorted(folder.glob("*.md"))
    assert len(paths) >= 2
    ids = [load_plan(path).id for path in paths]
    assert len(set(ids)) == len(ids)


def test_long_titles_give_the_same_word_boundary_slug_to_file_and_branch(tmp_path):
    from agentflow.plans import new_plan, title_slug

    title = "Add capsule_id to RoleAssignmentCreated and SecurityGroupUpdated events"
    assert title_slug(title) == "add-capsule-id-to-roleassignmentcreated"  # cut, no dangling "and"
    path = new_plan(tmp_path, title)
    assert path.name == "1-add-capsule-id-to-roleassignmentcreated.md"
    plan = load_plan(path)
    assert branch_name(plan) == "agentflow/1-add-capsule-id-to-roleassignmentcreated"
    assert branch_name(plan.model_copy(update={"path": tmp_path / "elsewhere.md"})) == branch_name(plan)
