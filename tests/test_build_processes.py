"""What a build asks git, and how often (#19 item 5): the runs of ``-j`` do these steps at the same
moment on shared CPUs, and the verdict note's write holds the git lock every run waits for. Counted
with ``GIT_TRACE``, as ``tests/test_gate_processes.py`` does for the gate."""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path

import pytest

from agentflow.git import NOTES_REF, Repo
from tests.build_helpers import builder_session, verdict, verifier_session, write_plan, write_script
from tests.helpers import git


def git_commands(trace: Path) -> list[str]:
    """The git commands a traced process started (its words unquoted), without agentflow's ``-c`` options."""
    commands = []
    for line in trace.read_text().splitlines() if trace.exists() else []:
        if "trace: built-in: git " in line:
            words = shlex.split(line.split("trace: built-in: git ", 1)[1])
            while words and words[0] == "-c":
                words = words[2:]
            commands.append(" ".join(words))
    return commands


@pytest.fixture
def traced(monkeypatch, tmp_path):
    trace = tmp_path / "git-trace.txt"

    def start() -> None:
        trace.unlink(missing_ok=True)
        monkeypatch.setenv("GIT_TRACE", str(trace))

    def stop() -> list[str]:
        monkeypatch.delenv("GIT_TRACE")
        return git_commands(trace)

    return start, stop


def note_refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/notes/").splitlines()


def test_a_first_note_is_written_in_four_git_processes_and_a_later_one_in_five(repo, traced):
    start, stop = traced
    head = git(repo, "rev-parse", "HEAD")
    r = Repo(repo, gitpython=False)
    start()
    first = r.append_note(head, '{"n": 1}')
    commands = stop()
    # the ref and the note read at once, the note, the new commit's id, the ref moved with the
    # scratch ref deleted in one transaction (were: rev-parse, update-ref -d, notes add, rev-parse,
    # update-ref, update-ref -d)
    assert [c.split()[0] for c in commands] == ["cat-file", "notes", "rev-parse", "update-ref"], commands
    assert first == git(repo, "rev-parse", NOTES_REF)
    start()
    second = r.append_note(head, '{"n": 2}')
    commands = stop()
    assert [c.split()[0] for c in commands] == ["cat-file", "update-ref", "notes", "rev-parse", "update-ref"]
    assert second == git(repo, "rev-parse", NOTES_REF) and second != first
    assert git(repo, "notes", f"--ref={NOTES_REF}", "show", head).splitlines() == ['{"n": 1}', '{"n": 2}']
    assert note_refs(repo) == [NOTES_REF]  # no scratch ref left
    assert git(repo, "rev-parse", f"{second}^") == first  # the notes history keeps the first


def test_a_line_already_there_writes_nothing(repo, traced):
    start, stop = traced
    head = git(repo, "rev-parse", "HEAD")
    r = Repo(repo, gitpython=False)
    r.append_note(head, "line")
    before = git(repo, "rev-parse", NOTES_REF)
    start()
    assert r.append_note(head, "line") is None
    assert stop() == ["cat-file --batch"]  # one read, nothing written
    assert git(repo, "rev-parse", NOTES_REF) == before


@pytest.mark.parametrize("first", [True, False], ids=["no-notes-yet", "notes-exist"])
def test_a_note_written_meanwhile_by_someone_else_is_kept(repo, monkeypatch, first):
    """The compare-and-swap fails when another writer moved (or created) the notes ref between the
    read and the swap; the note is rebuilt on the newer value, both lines stay, no scratch ref."""
    head = git(repo, "rev-parse", "HEAD")
    other = git(repo, "commit-tree", "-m", "other", git(repo, "rev-parse", "HEAD^{tree}"))
    r = Repo(repo, gitpython=False)
    if not first:
        r.append_note(other, "earlier")
    real_git = Repo.git
    interfered: list[str] = []

    def git_with_a_rival(self, *args, **kwargs):
        if args[:1] == ("notes",) and not interfered:
            interfered.append("yes")
            Repo(repo, gitpython=False).append_note(head, "rival")  # lands between read and swap
        return real_git(self, *args, **kwargs)

    monkeypatch.setattr(Repo, "git", git_with_a_rival)
    written = r.append_note(head, "mine")
    monkeypatch.setattr(Repo, "git", real_git)
    assert interfered and written == git(repo, "rev-parse", NOTES_REF)
    assert git(repo, "notes", f"--ref={NOTES_REF}", "show", head).splitlines() == ["rival", "mine"]
    if not first:
        assert git(repo, "notes", f"--ref={NOTES_REF}", "show", other) == "earlier"
    assert note_refs(repo) == [NOTES_REF]


def test_a_build_writes_its_verdict_note_in_four_git_processes(repo, cli, traced):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    start, stop = traced
    start()
    result = cli("build", "1", "--script", str(script))
    commands = stop()
    assert result.exit_code == 0, result.output
    notes_add = next(i for i, c in enumerate(commands) if c.startswith("notes --ref=refs/notes/agentflow-tmp/"))
    # the read before it; after it the new commit's id and the one transaction; nothing else asks
    # for the notes ref (the integrity state records the value just written)
    assert commands[notes_add - 1].startswith("cat-file --batch")
    assert commands[notes_add + 1].startswith("rev-parse refs/notes/agentflow-tmp/")
    assert commands[notes_add + 2] == "update-ref -m agentflow: verdict note --stdin"
    assert not [c for c in commands[notes_add:] if "--verify --quiet refs/notes/agentflow" in c], commands
    note = json.loads(git(repo, "notes", "--ref=refs/notes/agentflow", "show", "agentflow/1-farewell"))
    assert note["outcome"] == "approved"
    assert note_refs(repo) == [NOTES_REF]


def test_a_secret_base64_encoded_and_wrapped_at_76_columns_is_masked():
    """The line-break-tolerant pattern is compiled only when a text holds wrapped base64; it still
    masks the secret's encoded form where a line break splits it."""
    from agentflow.redact import MASK, encoded_forms, redact

    secret = "wrapped-secret-value-0123456789-abcdefghijklmnop"
    env = {"MY_API_KEY": secret}
    encoded = base64.b64encode(("x" * 40 + secret).encode()).decode()  # the secret's part spans column 76
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    forms = encoded_forms(secret)
    assert not any(form in wrapped for form in forms)  # split: no plain substring test finds it
    assert any(form in wrapped.replace("\n", "") for form in forms)
    masked = redact(f"output:\n{wrapped}\n", env)
    assert MASK in masked
    assert not any(form in masked.replace("\n", "") for form in forms)
    assert redact("no base64 here", env) == "no base64 here"


def test_commits_names_each_commit_in_one_git_process(repo, traced):
    start, stop = traced
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "-m", "v1", "v1")  # an annotated tag: peeled to its commit
    start()
    found = Repo(repo, gitpython=False).commits(["main", "refs/heads/nope", "v1", "--all", "HEAD~5", "main"])
    assert stop() == ["cat-file --batch-check=%(objectname) %(objecttype)"]
    assert found == {"main": head, "v1": head}


def test_a_run_asks_for_its_branch_and_base_in_one_git_process(repo, cli, traced):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    start, stop = traced
    start()
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    commands = stop()
    add = next(i for i, c in enumerate(commands) if c.startswith("worktree add --quiet -b agentflow/1-farewell"))
    before = commands[:add]
    # the pre-flight's base; the run's branch and base at once; the worktree's own check under the plan's lock
    assert before.count("rev-parse --verify --quiet main^{commit}") == 1, before
    assert before.count("rev-parse --verify --quiet refs/heads/agentflow/1-farewell^{commit}") == 1, before
    assert "cat-file --batch-check=%(objectname) %(objecttype)" in before


def test_the_commit_messages_are_read_once_for_the_rules_and_the_verifier(repo, cli, traced):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    start, stop = traced
    start()
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    logs = [c for c in stop() if c.startswith("log --format=%B%x00")]
    assert len(logs) == 1, logs


def test_the_rules_read_only_files_the_new_tree_holds(repo, traced):
    """The rules ask for every change's manifests (package.json, package.yaml, package.json5): a file
    the new tree does not hold is "" without a ``git show`` (three git processes a run); a file or
    folder it holds is read as before."""
    from agentflow.git import Repo
    from agentflow.rules.change import change_from_git

    base = git(repo, "rev-parse", "HEAD")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "app")
    head = git(repo, "rev-parse", "HEAD")
    start, stop = traced
    start()
    change = change_from_git(Repo(repo, gitpython=False), base, head)
    assert (
        change.read_new("package.json") == "" and change.read_new("src") and change.read_new("src/app.py") == "x = 1\n"
    )
    shows = [c for c in stop() if c.startswith("show ")]
    assert shows == [f"show {head}:src", f"show {head}:src/app.py"], shows  # a folder still goes to git


def test_the_verifier_starts_on_its_fresh_checkout_without_asking_git_and_its_commands_are_still_undone(
    repo, cli, traced
):
    """Its checkout was made of the commit just now (detached, nothing changed or untracked), so the
    point its commands are undone back to is known; a command's edits, new files and commits are
    undone before the next one runs as before."""
    from agentflow.events import SessionEnded
    from agentflow.ledger import Ledger

    write_plan(repo)
    sneaky = "echo hacked > src/app.py; mkdir -p gen && echo 1 > gen/f; git add -A; git commit -qm sneaky; echo ran"
    look = "cat src/app.py; ls gen 2>&1; git log --format=%s -1"
    verifier = [
        {"tool_calls": [{"name": "run_command", "input": {"command": sneaky}}]},
        {"tool_calls": [{"name": "run_command", "input": {"command": look}}]},
        {"tool_calls": [{"name": "submit_verdict", "input": verdict()}]},
    ]
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier]})
    start, stop = traced
    start()
    result = cli("build", "1", "--script", str(script))
    commands = stop()
    assert result.exit_code == 0, result.output
    assert not [c for c in commands if c.startswith("stash create")], commands  # nothing asked at its start
    with Ledger.open(repo) as ledger:
        session = next(
            e for e in ledger.events(kinds=["session_ended"]) if isinstance(e, SessionEnded) and e.role == "verifier"
        )
        messages = ledger.transcript(session.session_id) or []
    outputs = [
        block["content"]
        for message in messages
        if message.get("role") == "user" and isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert "ran" in outputs[0]
    assert "return 'bye'" in outputs[1] and "hacked" not in outputs[1]  # the commit's content again
    assert "No such file or directory" in outputs[1]  # gen/ was removed
    assert "sneaky" not in outputs[1]  # and the commit undone


def test_the_checks_take_the_commit_just_made_without_asking_for_head_again(repo, cli, traced):
    write_plan(repo, checks=["true"])
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    start, stop = traced
    start()
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    commands = stop()
    commit = next(i for i, c in enumerate(commands) if c.startswith("commit --no-verify"))
    checkout = next(i for i, c in enumerate(commands) if i > commit and c.startswith("reset --hard"))
    heads = [c for c in commands[commit:checkout] if c == "rev-parse --verify --quiet HEAD^{commit}"]
    assert len(heads) == 1, commands[commit:checkout]  # the commit step's own, for the id it made


def test_sessions_without_a_nested_git_ask_git_nothing_about_nested_repositories(repo, cli, traced):
    """The walk after each session that clears set-ID bits also looks for ``.git`` below the worktree's
    top; without one, no ``git ls-files`` lists the worktree for nested repositories (two a session)."""
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    start, stop = traced
    start()
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    commands = stop()
    assert "ls-files -s -z" not in commands and "ls-files -o --exclude-standard -z" not in commands, commands


@pytest.mark.parametrize("name", [".git", ".GIT", ".Git.", ".git ", "GIT~1"])
def test_a_dotgit_below_the_worktree_sends_the_check_to_git(repo, name, traced):
    """Any entry git might take for a ``.git`` (a file here: git would read it as a ``gitdir:`` link) is
    handed to ``embedded_repositories``; the worktree's own ``.git`` file is not."""
    from agentflow import integrity

    worktree = repo / ".agentflow" / "worktrees" / "w"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))
    before = integrity.snapshot(repo, worktree)
    assert integrity.scan(before).dotgit is False
    (worktree / "vendor").mkdir()
    (worktree / "vendor" / name).write_text("gitdir: /nowhere\n")
    start, stop = traced
    start()
    walked = integrity.scan(before)
    integrity.check(before, scanned=walked)
    assert walked.dotgit is True
    assert "ls-files -o --exclude-standard -z" in stop()


def test_a_nested_repository_is_still_found_and_removed(repo):
    """The walk's answer only spares git's listing when there is nothing to list: a ``git init`` below
    the worktree is still tampering, and restoring removes its ``.git``."""
    from agentflow import integrity

    worktree = repo / ".agentflow" / "worktrees" / "w"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))
    before = integrity.snapshot(repo, worktree)
    (worktree / "lib").mkdir()
    git(worktree / "lib", "init", "-q")
    found = integrity.check(before, scanned=integrity.scan(before))
    assert "a git repository at lib added" in found.changes
    assert integrity.restore(before) == []
    assert not (worktree / "lib" / ".git").exists()


def _four_commits(repo: Path) -> list[str]:
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    return [git(repo, "commit-tree", "-m", f"c{i}", tree) for i in range(4)]


def _write_together(repo: Path, commits: list[str]) -> list[BaseException | None]:
    """Four threads write a line each while the git lock is held elsewhere, as four -j runs that end
    at the same moment do; what each one raised."""
    import threading
    import time

    from agentflow.locks import GIT_LOCK
    from agentflow.orchestration import run as run_module

    raised: list[BaseException | None] = [None] * len(commits)

    def write(i: int) -> None:
        try:
            run_module._write_note(Repo(repo, gitpython=False), commits[i], f'{{"n": {i}}}', lambda lines: False)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            raised[i] = exc

    root = Repo(repo, gitpython=False).root
    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(commits))]
    with GIT_LOCK(root):
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20  # a synchronisation: all four queued behind the lock
        while len(run_module._NOTE_QUEUE.get(root, [])) < len(commits) and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    return raised


def test_the_notes_of_runs_ending_together_are_written_with_one_read_and_one_compare_and_swap(repo, traced):
    commits = _four_commits(repo)
    start, stop = traced
    start()
    assert _write_together(repo, commits) == [None] * 4
    commands = stop()
    # one read of the ref and the four notes, a git notes add each, the new commit's id, one swap
    # (were five git processes for each line, in turn)
    assert [c.split()[0] for c in commands] == ["cat-file", *["notes"] * 4, "rev-parse", "update-ref"], commands
    for i, commit in enumerate(commits):
        assert git(repo, "notes", f"--ref={NOTES_REF}", "show", commit) == f'{{"n": {i}}}'
    assert note_refs(repo) == [NOTES_REF]


def test_a_failed_write_of_notes_written_together_fails_every_run_whose_line_it_held(repo, monkeypatch):
    from agentflow.errors import GitError

    def refuse(self, lines, ref=NOTES_REF):
        raise GitError("could not update refs/notes/agentflow")

    monkeypatch.setattr(Repo, "append_notes", refuse)
    raised = _write_together(repo, _four_commits(repo))
    assert all(isinstance(e, GitError) for e in raised), raised
    assert git(repo, "for-each-ref", "refs/notes/") == ""
