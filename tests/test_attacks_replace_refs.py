"""Git replace objects and grafts: content the verifier saw that is not what merges.

git reads an object through ``refs/replace/<id>`` when such a ref exists (and the parents of a commit
through ``.git/info/grafts``), in every command: ``diff``, ``show``, ``worktree add``, ``log -p`` over
the notes. Object ids are unchanged: a tree still names the real blob, so the approval's ``tree``
matches on every clone, while the blob's content agentflow showed was another one. A replace ref of
the pull request's payload blob, pointing at the base's harmless version, made ``verify``'s diff
empty for that file, the rules found nothing, the verifier's checkout held the harmless file, and
the approval opened the gate on a clone without the ref, where the payload merges (tested before the
fix). Who makes such a ref: a CI step of the same job that ran the change's code outside the sandbox
(an ``npm ci`` before ``agentflow verify``), a fetch with a wide refspec (``+refs/*:refs/*``, a
mirror of the author's fork), a builder with ``sandbox.mode: off`` (the integrity check catches
that one). agentflow's git now runs with ``GIT_NO_REPLACE_OBJECTS=1`` and no graft file
(``agentflow.git.git_env``).
"""

from __future__ import annotations

import json
from pathlib import Path

from agentflow.git import Repo
from tests.build_helpers import first_prompt, verifier_session, write_plan, write_script
from tests.helpers import git
from tests.test_integrity import assert_no_approval, hostile_build

PAYLOAD = "PAYLOAD-5e1c exfiltrate()"
TESTS = "from app import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n    assert total([]) == 0\n"
HARMLESS = "def total(xs):\n    return sum(xs)\n"


def _pull_request(repo: Path) -> str:
    """main with app.py and its tests; branch pr adds a payload to app.py and empties the test."""
    (repo / "app.py").write_text(HARMLESS)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text(TESTS)
    write_plan(repo, scope=["app.py"])
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "app.py").write_text(HARMLESS + f"\n\n{PAYLOAD}\n")
    (repo / "tests" / "test_app.py").write_text("from app import total\n\n\ndef test_total():\n    pass\n")
    git(repo, "commit", "-q", "-am", "change", "--trailer", "Agentflow-Plan: 1")
    return git(repo, "rev-parse", "HEAD")


def _replace_with_the_base(repo: Path, path: str) -> None:
    """What a hostile CI step (or a wide fetch) leaves: the change's blob read as the base's."""
    git(repo, "replace", git(repo, "rev-parse", f"pr:{path}"), git(repo, "rev-parse", f"main:{path}"))


def _rule_ids(data: dict) -> set[str]:
    return {f.get("pattern") or "" for f in data["findings"]} | {f.get("rule") or "" for f in data["findings"]}


def test_a_replace_ref_does_not_hide_the_payload_from_the_verifier(repo: Path, cli) -> None:
    head = _pull_request(repo)
    _replace_with_the_base(repo, "app.py")
    _replace_with_the_base(repo, "tests/test_app.py")
    assert PAYLOAD not in git(repo, "diff", "main..pr")  # what plain git shows here

    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    data = json.loads(result.stdout)

    prompt = first_prompt(repo, "verifier", 1)
    assert PAYLOAD in prompt  # the verifier's diff is the real one
    assert data["outcome"] != "approved", data["findings"]
    assert "assertion_removed" in _rule_ids(data) or "test_deleted" in _rule_ids(data), data["findings"]
    with Repo(repo) as read:  # GitPython's cat-file processes too
        assert PAYLOAD.encode() in read.lib().rev_parse(f"{head}:app.py").data_stream.read()


def _forked_history(repo: Path) -> tuple[str, str, str]:
    """main: base, then M. pr, forked at base: Y adds the payload, head a harmless line on top."""
    (repo / "app.py").write_text(HARMLESS)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("# sample, later\n")
    git(repo, "commit", "-q", "-am", "M")
    main = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "pr", base)
    (repo / "app.py").write_text(HARMLESS + f"\n\n{PAYLOAD}\n")
    git(repo, "commit", "-q", "-am", "Y")
    payload = git(repo, "rev-parse", "HEAD")
    (repo / "notes.txt").write_text("harmless\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "head")
    return main, payload, git(repo, "rev-parse", "HEAD")


def test_a_replaced_commit_does_not_move_the_change_base(repo: Path) -> None:
    """``git replace --graft`` giving main's tip the payload's commit as a parent made the payload
    look merged already: the change base was that commit, and the diff showed only the harmless rest."""
    main, payload, head = _forked_history(repo)
    git(repo, "replace", "--graft", main, git(repo, "rev-parse", "main~1"), payload)
    assert git(repo, "merge-base", head, "main") == payload  # plain git: the payload is main's already

    for read in (Repo(repo), Repo(repo, gitpython=False)):
        base = read.change_base(head, "main")
        assert base == git(repo, "rev-parse", "main~1")
        assert PAYLOAD in read.diff(base, head)


def test_a_graft_file_does_not_move_the_change_base(repo: Path) -> None:
    main, payload, head = _forked_history(repo)
    common = Path(git(repo, "rev-parse", "--git-common-dir"))
    grafts = (common if common.is_absolute() else repo / common) / "info" / "grafts"
    grafts.parent.mkdir(exist_ok=True)
    grafts.write_text(f"{main} {git(repo, 'rev-parse', 'main~1')} {payload}\n")
    assert git(repo, "merge-base", head, "main") == payload

    for read in (Repo(repo), Repo(repo, gitpython=False)):
        assert read.change_base(head, "main") == git(repo, "rev-parse", "main~1")


def test_a_builder_that_writes_a_replace_ref_is_tampering(repo: Path, cli) -> None:
    """Held before: the integrity check lists every ref, refs/replace/* included (sandbox off)."""
    result = hostile_build(repo, cli, "git replace $(git rev-parse HEAD) $(git rev-parse HEAD~1)")
    assert_no_approval(repo, result, "refs/replace/")
    assert git(repo, "for-each-ref", "refs/replace/") == ""


def test_a_sandboxed_command_reads_the_objects_as_stored(repo: Path) -> None:
    """A check's (or the verifier's) own ``git show`` in the sandbox honoured the replace ref and
    printed the base's file where the tree holds the payload."""
    import subprocess

    from agentflow.sandbox import Sandbox
    from tests.helpers import need_tool

    need_tool("bwrap")
    _pull_request(repo)
    _replace_with_the_base(repo, "app.py")
    git(repo, "checkout", "-q", "pr")
    sandbox = Sandbox.from_config()
    done = subprocess.run(
        sandbox.wrap(["git", "show", "pr:app.py"], repo),
        env=sandbox.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and PAYLOAD in done.stdout, done.stdout + done.stderr
