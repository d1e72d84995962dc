"""CLAUDE.md patterns: parsing into patterns with parts, lint, selection for a plan, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.errors import UsageError
from agentflow.patterns import (
    choose_patterns,
    lint_patterns,
    load_patterns,
    parse_patterns,
    part_of,
    render_patterns,
    select_patterns,
    words,
)
from agentflow.plans import parse_plan

DOC = """\
# Conventions of the sample project

Intro text under the title is not a pattern.

## Capsule isolation

### When to use
Every entity that belongs to a tenant.

### Pattern
```rust
#[derive(DynamoDbEntity)]
struct RoleAssignment { capsule_id: CapsuleId }
```

### Anti-patterns
- Entities without `capsule_id`.

### Rationale
Queries by capsule must see every tenant-scoped row.

## Storage conventions

These group the patterns below.

### Idempotent migrations

**When to use:** every data migration.

**Pattern:** check before you write.

```python
# ## not a heading: inside a fence
```

**Anti-pattern:** blind updates.

**Why:** migrations are re-run after a failure.

### Logging

Just prose, no parts at all.

## Thin CLI

- **When to use**: every command.
- **Example**: parse, call, print.
- **Don't**: business logic in the command.
"""


def test_parse_patterns_ids_parts_and_grouping():
    patterns = parse_patterns(DOC)
    assert [p.id for p in patterns] == ["capsule-isolation", "idempotent-migrations", "logging", "thin-cli"]
    by_id = {p.id: p for p in patterns}
    full = {"when", "pattern", "anti-patterns", "rationale"}
    assert by_id["capsule-isolation"].parts == full
    assert by_id["idempotent-migrations"].parts == full
    assert by_id["logging"].parts == frozenset()
    assert by_id["thin-cli"].parts == {"when", "pattern", "anti-patterns"}
    # parts are part of the pattern's body, not patterns of their own
    assert "struct RoleAssignment" in by_id["capsule-isolation"].body
    assert "Queries by capsule" in by_id["capsule-isolation"].body
    # a sibling pattern's text does not leak into the body
    assert "Logging" not in by_id["idempotent-migrations"].body
    assert by_id["capsule-isolation"].level == 2 and by_id["logging"].level == 3
    assert by_id["capsule-isolation"].line == 5


def test_part_variants():
    assert part_of("When to use:") == "when"
    assert part_of("**Why?**") == "rationale"
    assert part_of("Anti-pattern") == "anti-patterns"
    assert part_of("Antipatterns") == "anti-patterns"
    assert part_of("Example") == "pattern"
    assert part_of("Installation") is None


def test_lint_reports_missing_parts_and_duplicates():
    doc = DOC + "\n## Thin CLI\n\n**When to use:** again\n"
    problems = [str(p) for p in lint_patterns(parse_patterns(doc))]
    assert any("logging: missing When to use, Pattern, Anti-patterns, Rationale" in p for p in problems)
    assert any("thin-cli: missing Rationale" in p for p in problems)
    assert any("duplicate id" in p for p in problems)
    assert not any("capsule-isolation" in p for p in problems)


def test_render_keeps_heading_and_body():
    patterns = parse_patterns(DOC)
    text = render_patterns(patterns[:1])
    assert text.startswith("## Capsule isolation\n")
    assert "### Rationale" in text


def test_words_split_camel_case_and_drop_stop_words():
    found = set(words("The DynamoDbEntity macro must use capsule_id"))
    assert {"dynamodbentity", "dynamo", "entity", "macro", "capsule"} <= found
    assert "the" not in found and "must" not in found


def _plan(tmp_path: Path, front: str, body: str = "## Context\nSomething.\n"):
    return parse_plan(f"---\nid: 1\ntitle: T\n{front}---\n{body}", tmp_path / "1-t.md")


def test_named_patterns_are_selected_with_reason(tmp_path):
    patterns = parse_patterns(DOC)
    plan = _plan(tmp_path, "patterns: [thin-cli, Capsule isolation]\n")
    chosen = choose_patterns(patterns, plan, token_budget=10)  # named ones ignore the budget
    assert [(s.pattern.id, s.reason) for s in chosen] == [
        ("thin-cli", "named in the plan"),
        ("capsule-isolation", "named in the plan"),
    ]


def test_unknown_named_pattern_is_an_error_naming_plan_and_suggestion(tmp_path):
    plan = _plan(tmp_path, "patterns: [capsule-isolaton]\n")
    with pytest.raises(UsageError) as info:
        select_patterns(parse_patterns(DOC), plan, 6000)
    message = str(info.value)
    assert "1-t.md" in message and "unknown pattern 'capsule-isolaton'" in message
    assert "capsule-isolation" in message and info.value.exit_code == 2


def test_relevance_selection_prefers_overlap_and_explains(tmp_path):
    patterns = parse_patterns(DOC)
    plan = _plan(tmp_path, "", "## Context\nRoleAssignment entities lack the capsule_id of their tenant.\n")
    chosen = choose_patterns(patterns, plan, token_budget=6000)
    assert chosen[0].pattern.id == "capsule-isolation"
    assert chosen[0].reason.startswith("relevant: shares ") and "capsule" in chosen[0].reason
    assert "logging" not in [s.pattern.id for s in chosen]  # shares no word with the plan


def test_relevance_selection_respects_the_budget(tmp_path):
    patterns = parse_patterns(DOC)
    plan = _plan(tmp_path, "", "## Context\ncapsule tenant entity migrations command rerun failure\n")
    everything = choose_patterns(patterns, plan, token_budget=100_000)
    assert len(everything) >= 2
    budget = everything[0].pattern.tokens
    limited = choose_patterns(patterns, plan, token_budget=budget)
    assert sum(s.pattern.tokens for s in limited) <= budget
    assert len(limited) < len(everything)


def test_no_plan_or_no_patterns_selects_nothing(tmp_path):
    assert select_patterns(parse_patterns(DOC), None, 6000) == []
    assert select_patterns([], _plan(tmp_path, ""), 6000) == []


def test_load_patterns_missing_file_is_empty(tmp_path):
    assert load_patterns(tmp_path) == []


# -- CLI -------------------------------------------------------------------------------------------------


def test_patterns_list_show_lint(repo, cli):
    (repo / "CLAUDE.md").write_text(DOC)
    listed = cli("patterns", "list")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "capsule-isolation",
        "idempotent-migrations",
        "logging",
        "thin-cli",
    ]
    data = json.loads(cli("patterns", "list", "--json").stdout)
    assert data[0]["id"] == "capsule-isolation" and data[0]["parts"] == [
        "anti-patterns",
        "pattern",
        "rationale",
        "when",
    ]

    shown = cli("patterns", "show", "thin-cli")
    assert shown.exit_code == 0 and shown.stdout.startswith("## Thin CLI")
    unknown = cli("patterns", "show", "thin-clu")
    assert unknown.exit_code == 2 and "CLAUDE.md" in unknown.stderr and "thin-cli" in unknown.stderr

    lint = cli("patterns", "lint")
    assert lint.exit_code == 1
    assert "CLAUDE.md:40: logging: missing When to use" in lint.stdout
    assert "thin-cli: missing Rationale" in lint.stdout


def test_patterns_lint_clean_file_exits_0(repo, cli):
    good = DOC.split("## Storage conventions")[0]
    (repo / "CLAUDE.md").write_text(good)
    result = cli("patterns", "lint")
    assert result.exit_code == 0 and "OK 1 patterns" in result.stdout


@pytest.mark.parametrize("command", [["patterns", "list"], ["patterns", "lint"], ["patterns", "show", "x"]])
def test_missing_claude_md_is_exit_2_with_fix(repo, cli, command):
    result = cli(*command)
    assert result.exit_code == 2
    assert "CLAUDE.md: no such file" in result.stderr and "agentflow init" in result.stderr


def test_patterns_file_from_config(repo, cli):
    (repo / "agentflow.yaml").write_text("patterns:\n  file: docs/CONVENTIONS.md\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "CONVENTIONS.md").write_text(DOC)
    assert "capsule-isolation" in cli("patterns", "list").stdout


def test_patterns_list_for_a_plan_shows_why(repo, cli):
    (repo / "CLAUDE.md").write_text(DOC)
    (repo / ".plans").mkdir()
    (repo / ".plans" / "3-x.md").write_text(
        "---\nid: 3\ntitle: Capsule on role assignments\n---\n## Context\nEntities need capsule_id.\n"
    )
    result = cli("patterns", "list", "--plan", "3")
    assert result.exit_code == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith("capsule-isolation") and "relevant: shares" in first


def test_this_repository_claude_md_passes_lint():
    root = Path(__file__).resolve().parents[1]
    patterns = load_patterns(root)
    assert len(patterns) >= 5
    assert lint_patterns(patterns) == []
