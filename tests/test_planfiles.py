"""`agentflow status` lists plans from a cache of the files last found valid (agentflow.planfiles,
#19 item 1): the same output as checking every file, no pydantic while nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

from agentflow.events import RunStarted
from agentflow.ledger import Ledger
from agentflow.planfiles import CACHE
from tests.helpers import command_in_fresh_process

WATCH = ("pydantic", "agentflow.plans", "agentflow.config")


def _plans(repo: Path, cli) -> None:
    for title in ("First change", "Second change", "Third change"):
        assert cli("plan", "new", title).exit_code == 0
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="2"))


def _status(cli) -> tuple[int, str, str]:
    result = cli("status")
    return result.exit_code, result.stdout, result.stderr


def test_the_cached_listing_is_the_checked_one(repo: Path, cli) -> None:
    _plans(repo, cli)
    assert not (repo / CACHE).exists()
    checked = _status(cli)
    assert (repo / CACHE).exists()
    assert _status(cli) == checked and checked[0] == 0 and "Second change" in checked[1]
    assert cli("status", "--json").stdout == cli("status", "--json").stdout
    exit_code, loaded = command_in_fresh_process(repo, ["status"], WATCH)
    assert (exit_code, loaded) == (0, [])  # nothing changed: no plan models, no pydantic


def test_a_changed_or_broken_plan_is_checked_again(repo: Path, cli) -> None:
    _plans(repo, cli)
    _status(cli)
    second = next((repo / ".plans").glob("2-*.md"))
    second.write_text(second.read_text().replace("title: Second change", "title: Renamed change"))
    assert "Renamed change" in _status(cli)[1]
    first = next((repo / ".plans").glob("1-*.md"))
    first.write_text(first.read_text().replace("title: First change", "titel: First change"))
    exit_code, out, err = _status(cli)
    assert exit_code == 2 and "titel" in err and "First change" not in out
    assert _status(cli)[0] == 2  # an invalid file is never kept: reported every time
    exit_code, loaded = command_in_fresh_process(repo, ["status"], WATCH)
    assert exit_code == 2 and "agentflow.plans" in loaded


def test_a_duplicate_id_and_a_new_file_are_checked(repo: Path, cli) -> None:
    _plans(repo, cli)
    _status(cli)
    third = next((repo / ".plans").glob("3-*.md"))
    (repo / ".plans" / "9-copy.md").write_text(third.read_text())
    exit_code, _, err = _status(cli)
    assert exit_code == 2 and "duplicate plan id '3'" in err


def test_a_cache_of_other_code_or_damaged_is_ignored(repo: Path, cli) -> None:
    _plans(repo, cli)
    checked = _status(cli)
    data = json.loads((repo / CACHE).read_text())
    data["key"] = "another agentflow"
    for entry in data["plans"].values():
        entry["title"] = "forged"
    (repo / CACHE).write_text(json.dumps(data))
    assert _status(cli) == checked
    (repo / CACHE).write_text("{not json")
    assert _status(cli) == checked


def test_status_leaves_no_state_where_there_was_none(repo: Path, cli) -> None:
    assert cli("plan", "new", "Only change").exit_code == 0
    assert _status(cli)[0] == 0
    assert not (repo / ".agentflow").exists()


def test_a_cache_that_cannot_be_written_changes_nothing(repo: Path, cli) -> None:
    _plans(repo, cli)
    (repo / CACHE.parent).write_text("a file where the cache folder would be")
    first = _status(cli)
    assert first[0] == 0 and _status(cli) == first
    assert not list((repo / ".agentflow").glob(".status-plans*"))
