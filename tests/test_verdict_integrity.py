"""#13 items 3-6 replayed as attacks through the CLI: binding, revocation, note writes, secrets, escaping."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.events import RunStarted, VerdictRecorded
from agentflow.ledger import Ledger
from tests.build_helpers import builder_session, finding, notes, verifier_session, write_plan, write_script
from tests.gate_helpers import add_verdict, commit_file, git, note_for, plan_branch

KEY = "team-secret-signing-key-0123-0123456789abcdef0123456789"
BRANCH = "agentflow/348-capsule-isolation"
SIGNED = {"AGENTFLOW_SIGNING_KEY": KEY}


def note_lines(root: Path, ref: str) -> list[str]:
    return git(root, "notes", "--ref=refs/notes/agentflow", "show", ref, check=False).splitlines()


def set_note(root: Path, ref: str, lines: list[str]) -> None:
    """What an attacker with push access to the notes does: rewrite the note of ``ref``."""
    subprocess.run(
        ["git", "notes", "--ref=refs/notes/agentflow", "add", "-f", "-F", "-", ref],
        cwd=root,
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
    )


# -- binding (item 3) ---------------------------------------------------------------------------


def test_approved_tree_reparented_onto_a_newer_main_is_stale(repo, cli):
    approved = plan_branch(repo)
    add_verdict(repo, BRANCH, key=KEY)
    commit_file(repo, "src/auth.py", "check_token()  # security fix\n", "security fix on main")
    tree = git(repo, "rev-parse", f"{approved}^{{tree}}")
    reparented = git(repo, "commit-tree", tree, "-p", "main", "-m", "builder: implement plan 348")
    git(repo, "branch", "reparented", reparented)

    result = cli("gate", "reparented", "--base", "main", env=SIGNED)
    assert result.exit_code == 1, result.output
    assert "stale: approved on base" in result.output and "this commit sits on" in result.output
    assert approved[:12] not in result.output.splitlines()[0]
    # pushing it straight onto main (the pre-push rule) is refused as well
    from agentflow.gate import evaluate_merge_commit
    from agentflow.git import Repo

    assert not evaluate_merge_commit(Repo(repo), reparented, key=KEY).open


def test_message_only_amend_keeps_the_gate_open_and_a_clean_rebase_needs_reverification(repo, cli):
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=KEY)
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "commit", "-q", "--amend", "-m", "builder: a better message", "--no-verify")
    result = cli("gate", "HEAD", env=SIGNED)
    assert result.exit_code == 0, result.output
    assert "identical tree" in result.output

    git(repo, "checkout", "-q", "main")
    commit_file(repo, "docs.md", "unrelated\n", "docs on main")
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "rebase", "-q", "main")
    result = cli("gate", "HEAD", "--base", "main", env=SIGNED)
    assert result.exit_code == 1
    assert "needs re-verification" in result.output


def test_an_old_note_without_base_tree_is_bound_through_its_base_commit(repo, cli):
    plan_branch(repo)
    add_verdict(repo, BRANCH, base_tree=None)
    assert cli("gate", BRANCH).exit_code == 0
    # ... and fails closed when it names a base commit that does not exist here
    git(repo, "notes", "--ref=refs/notes/agentflow", "remove", BRANCH)
    add_verdict(repo, BRANCH, base_tree=None, base="0" * 40, patch_id=None)
    result = cli("gate", BRANCH)
    assert result.exit_code == 1 and "cannot be bound" in result.output


# -- revocation (item 4) ------------------------------------------------------------------------


def test_deleting_a_later_signed_rejection_does_not_bring_the_approval_back(repo, cli):
    plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY, ts="2026-11-27T10:00:00+00:00")
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2026-11-27T11:00:00+00:00")
    assert cli("gate", BRANCH, env=SIGNED).exit_code == 1

    set_note(repo, BRANCH, [approval.to_line()])  # the rejection is gone from the current notes
    assert note_lines(repo, BRANCH) == [approval.to_line()]
    result = cli("gate", BRANCH, env=SIGNED)
    assert result.exit_code == 1, result.output
    assert "revoked" in result.output

    git(repo, "notes", "--ref=refs/notes/agentflow", "remove", BRANCH)  # removed, then re-added alone
    set_note(repo, BRANCH, [approval.to_line()])
    assert cli("gate", BRANCH, env=SIGNED).exit_code == 1


def test_a_deleted_rejection_still_counts_for_a_message_only_amend(repo, cli):
    plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY, ts="2026-11-27T10:00:00+00:00")
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2026-11-27T11:00:00+00:00")
    set_note(repo, BRANCH, [approval.to_line()])
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "commit", "-q", "--amend", "-m", "same tree, new commit", "--no-verify")
    result = cli("gate", "HEAD", env=SIGNED)
    assert result.exit_code == 1, result.output


def _clone(bare: Path, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(bare), str(target)], check=True)
    git(target, "config", "user.email", "other@example.com")
    git(target, "config", "user.name", "Other")
    return target


@pytest.mark.parametrize("rewrite", ["descendant", "force-pushed"])
def test_notes_fetch_of_rewritten_remote_notes_keeps_every_local_line(repo, cli, tmp_path, rewrite):
    plan_branch(repo)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main", BRANCH)
    approval = add_verdict(repo, BRANCH, key=KEY, ts="2026-11-27T10:00:00+00:00")
    rejection = add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2026-11-27T11:00:00+00:00")
    assert cli("notes", "push").exit_code == 0

    other = _clone(bare, tmp_path / "other")
    git(other, "fetch", "-q", "origin", "refs/notes/agentflow:refs/notes/agentflow")
    head = git(other, "rev-parse", f"origin/{BRANCH}")
    if rewrite == "descendant":  # a normal notes commit on top that drops the rejection
        set_note(other, head, [approval.to_line()])
        git(other, "push", "-q", "origin", "refs/notes/agentflow")
    else:  # a brand-new notes history holding only the approval
        git(other, "update-ref", "-d", "refs/notes/agentflow")
        set_note(other, head, [approval.to_line()])
        git(other, "push", "-q", "-f", "origin", "refs/notes/agentflow")

    result = cli("notes", "fetch")
    assert result.exit_code == 0, result.output
    assert rejection.to_line() in note_lines(repo, BRANCH)
    assert cli("gate", BRANCH, env=SIGNED).exit_code == 1
    # a fresh clone that only has the rewritten notes still sees the rejection in their history
    if rewrite == "descendant":
        fresh = _clone(bare, tmp_path / "fresh")
        monkey_cwd = os.getcwd()
        try:
            os.chdir(fresh)
            assert cli("notes", "fetch").exit_code == 0
            assert cli("gate", f"origin/{BRANCH}", "--base", "origin/main", env=SIGNED).exit_code == 1
        finally:
            os.chdir(monkey_cwd)


def test_eight_concurrent_note_writers_leave_eight_notes(repo, cli):
    plan_branch(repo)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env.pop("AGENTFLOW_SIGNING_KEY", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agentflow", "approve", "--override", "--reason", f"writer {i}", BRANCH],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    results = [proc.communicate(timeout=300) + (proc.returncode,) for proc in procs]
    assert all(code == 0 for _, _, code in results), results
    reasons = sorted(json.loads(line)["reason"] for line in note_lines(repo, BRANCH))
    assert reasons == sorted(f"writer {i}" for i in range(8))
    assert git(repo, "for-each-ref", "refs/notes/agentflow-tmp") == ""  # no scratch refs left behind
    result = cli("gate", BRANCH)
    assert result.exit_code == 0 and "human override" in result.output


def test_a_kill_between_note_and_ledger_event_does_not_duplicate_the_line_on_resume(repo, cli, monkeypatch):
    from agentflow.orchestration.run import Run

    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    real_emit = Run.emit

    def emit(self, event):
        if isinstance(event, VerdictRecorded):
            raise KeyboardInterrupt  # the note is written, its event is not
        real_emit(self, event)

    monkeypatch.setattr(Run, "emit", emit)
    assert cli("build", "1", "--script", str(script)).exit_code == 130
    monkeypatch.setattr(Run, "emit", real_emit)
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert len(notes(repo, head)) == 1
    with Ledger.open(repo) as ledger:
        run_id = next(e.run_id for e in ledger.events() if isinstance(e, RunStarted))
    resume = write_script(repo, {"builder": [], "verifier": []}, name="resume.yaml")
    result = cli("build", "--resume", run_id, "--script", str(resume))
    assert result.exit_code == 0, result.output
    assert [n["outcome"] for n in notes(repo, head)] == ["approved"]


# -- signing key, notes carry facts, ids (item 5) ------------------------------------------------


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), base64.b64encode(raw).decode().rstrip("="), base64.b64encode(b"x" + raw).decode()[2:14]]


def test_the_signing_key_and_check_output_never_reach_notes_events_or_reports(repo, cli, tmp_path, monkeypatch):
    leak = f"echo {KEY}; printf %s {KEY} | base64; printf %s {KEY} | od -An -tx1 | tr -d ' \\n'; env | base64"
    write_plan(repo, checks=[leak, "echo check-output-$((6*7))"])
    message = f"the check printed {KEY} and the finding text says SECRET-FINDING-TEXT"
    script = write_script(
        repo,
        {
            "builder": [builder_session()],
            "verifier": [verifier_session(decision="request_changes", findings=[finding(message=message)])],
        },
    )
    key_file = tmp_path / "signing.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY_FILE", str(key_file))
    result = cli("build", "1", "--script", str(script), "--max-cycles", "1")
    assert result.exit_code == 1, result.output
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    note_text = "\n".join(note_lines(repo, head))
    note = json.loads(note_lines(repo, head)[0])
    assert note["sig"] and note["findings"][0]["id"] == "F1" and "message" not in note["findings"][0]
    assert "check-output-42" not in note_text and "SECRET-FINDING-TEXT" not in note_text
    assert all("output_tail" not in c for c in note["checks"])

    reports = tmp_path / "reports"
    reports.mkdir()
    git(repo, "checkout", "-q", "--detach", "agentflow/1-farewell")
    verify = write_script(
        repo, {"verifier": [verifier_session(findings=[finding(message=message)])]}, name="verify.yaml"
    )
    result = cli(
        "verify",
        "--plan",
        "1",
        "--script",
        str(verify),
        "--format",
        "github",
        "--json",
        str(reports / "v.json"),
        "--md",
        str(reports / "v.md"),
        "--sarif",
        str(reports / "v.sarif"),
        "--junit",
        str(reports / "v.xml"),
    )
    assert result.exit_code in (0, 1), result.output
    outputs = {p.name: p.read_text() for p in reports.iterdir()}
    outputs["stdout"] = result.output
    outputs["notes"] = git(repo, "log", "-p", "refs/notes/agentflow")
    with Ledger.open(repo) as ledger:
        outputs["events"] = "\n".join(e.model_dump_json() for e in ledger.events())
    for gate_format in ("text", "json", "github", "codequality"):
        outputs[f"gate-{gate_format}"] = cli("gate", "HEAD", "--format", gate_format).output
    for name, text in outputs.items():
        for form in _forms(KEY):
            assert form not in text, f"{name} leaks the signing key as {form!r}"
    assert "[REDACTED]" in outputs["v.json"]  # the check output was there, masked


def test_the_signing_key_is_read_once_per_process(tmp_path, monkeypatch):
    from agentflow.keys import signing_key

    key_file = tmp_path / "k"
    key_file.write_text("first-key-value-1234-0123456789abcdef0123456789\n")
    monkeypatch.delenv("AGENTFLOW_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY_FILE", str(key_file))
    assert signing_key() == "first-key-value-1234-0123456789abcdef0123456789"
    key_file.write_text("swapped-by-a-builder-999-0123456789abcdef0123456789\n")
    assert signing_key() == "first-key-value-1234-0123456789abcdef0123456789"


def test_both_key_variables_or_an_unreadable_key_file_is_exit_2(repo, cli, tmp_path):
    plan_branch(repo)
    result = cli("gate", BRANCH, env={"AGENTFLOW_SIGNING_KEY": KEY, "AGENTFLOW_SIGNING_KEY_FILE": "/x"})
    assert result.exit_code == 2 and "set only one" in result.output
    result = cli("gate", BRANCH, env={"AGENTFLOW_SIGNING_KEY_FILE": str(tmp_path / "missing.key")})
    assert result.exit_code == 2 and "missing.key" in result.output


def test_a_verdict_with_an_invalid_model_chosen_id_fails_closed(repo, cli):
    write_plan(repo)
    bad = finding(fid="F1\n::stop-commands::pwned")
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session(findings=[bad])]})
    result = cli("build", "1", "--script", str(script), "--max-cycles", "1")
    assert result.exit_code == 3, result.output
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    note = notes(repo, head)[0]
    assert note["outcome"] == "no_verdict" and "stop-commands" not in json.dumps(note)
    assert cli("gate", "agentflow/1-farewell").exit_code == 1


# -- annotations (item 6) -----------------------------------------------------------------------


def test_a_finding_id_or_path_cannot_start_a_workflow_command(repo, cli, tmp_path):
    plan_branch(repo)
    hostile = "x\n::stop-commands::pwned\n::error::forged"
    add_verdict(
        repo,
        BRANCH,
        "changes_requested",
        findings=[{"id": hostile, "severity": "high", "file": f"src/a.py\n{hostile}", "line": 3}],
        reason=f"why\n{hostile}",
        plan=f"348\n{hostile}",
    )
    summary = tmp_path / "summary.md"
    result = cli("gate", BRANCH, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("::error ")
    assert not any(line.lstrip().startswith("::") for line in lines[1:]), lines
    assert not any("##[" in line for line in lines)
    assert "::stop-commands::" not in result.output.replace("%0A", "\n").split("\n", 1)[0]
    assert all(not line.startswith("::") for line in summary.read_text().splitlines())


def test_verify_github_annotations_escape_model_fields(repo, cli):
    from agentflow.report.verify import VerifyReport, render

    report = VerifyReport(
        run_id="r",
        outcome="changes_requested",
        decision="request_changes",
        reasons=["x\n::stop-commands::a"],
        summary="s\n::stop-commands::b",
        base="main",
        base_commit="0" * 40,
        head="1" * 40,
        findings=[
            {"id": "F1,x::y", "severity": "high", "file": "a.py\n::stop-commands::c", "line": 1, "message": "m\n::x::"}
        ],
    )
    out = render(report, "github")
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.split(" ", 1)[0] in ("::error", "::warning") for line in lines), lines
    assert "file=a.py%0A%3A%3Astop-commands%3A%3Ac" in lines[1] and "title=F1%2Cx%3A%3Ay" in lines[1]


# -- honest paths -------------------------------------------------------------------------------


def test_an_approved_build_opens_the_gate_and_an_override_is_counted(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script), env=SIGNED).exit_code == 0
    result = cli("gate", "agentflow/1-farewell", env=SIGNED)
    assert result.exit_code == 0 and "approved by the verifier" in result.output
    note = notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))[0]
    assert note["base_tree"] == git(repo, "rev-parse", "main^{tree}")
    assert note["criteria"] == [{"id": "AC1", "status": "met"}, {"id": "AC2", "status": "met"}]

    plan_branch(repo)
    assert cli("approve", "--override", "--reason", "hotfix reviewed by Ana", BRANCH, env=SIGNED).exit_code == 0
    result = cli("gate", BRANCH, env=SIGNED)
    assert result.exit_code == 0 and "human override" in result.output
    with Ledger.open(repo) as ledger:
        overrides = [e for e in ledger.events() if isinstance(e, VerdictRecorded) and e.override]
    assert len(overrides) == 1


def test_note_for_helper_matches_the_light_parser_signature(repo):
    """The gate's pydantic-free parser reads exactly what VerdictNote signs."""
    from agentflow.notes import parse_line

    plan_branch(repo)
    note = note_for(repo, BRANCH, key=KEY, findings=[{"id": "F1", "severity": "low", "x": 1.5}], extra_field=[1])
    parsed = parse_line(note.to_line())
    assert parsed is not None and parsed.signature_valid(KEY)
    assert not parsed.signature_valid("another-key")


# -- merge queues (#15 item 4, gate side) --------------------------------------------------------


def _pr(root: Path, name: str, path: str, approve: bool = True) -> str:
    git(root, "checkout", "-q", "-b", name, "main")
    head = commit_file(root, path, f"{name}\n", f"{name}: change", {"Agentflow-Plan": name})
    git(root, "checkout", "-q", "main")
    if approve:
        add_verdict(root, head, key=KEY, plan=name)
    return head


def _queue_merge(root: Path, first: str, second: str, edit: bool = False) -> str:
    tree = git(root, "merge-tree", "--write-tree", first, second).splitlines()[0]
    if edit:  # a merge whose tree is not the clean merge: unverified code hidden in the merge commit
        git(root, "read-tree", tree)
        blob = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=root, input="evil\n", text=True, capture_output=True
        ).stdout.strip()
        git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},evil.py")
        tree = git(root, "write-tree")
        git(root, "read-tree", "HEAD")
    return git(root, "commit-tree", tree, "-p", first, "-p", second, "-m", f"Merge {second[:8]}")


def test_a_merge_group_commit_opens_only_for_clean_merges_of_approved_heads(repo, cli):
    base = git(repo, "rev-parse", "main")
    first = _pr(repo, "pr1", "src/one.py")
    second = _pr(repo, "pr2", "src/two.py")
    unapproved = _pr(repo, "pr3", "src/three.py", approve=False)
    q1 = _queue_merge(repo, base, first)
    q2 = _queue_merge(repo, q1, second)

    result = cli("gate", q2, "--base", base, env=SIGNED)
    assert result.exit_code == 0, result.output
    assert "merge-queue commit: clean merges of the approved" in result.output
    assert first[:12] in result.output and second[:12] in result.output

    edited = _queue_merge(repo, q1, second, edit=True)
    result = cli("gate", edited, "--base", base, env=SIGNED)
    assert result.exit_code == 1 and "not the clean merge" in result.output

    with_unapproved = _queue_merge(repo, q2, unapproved)
    result = cli("gate", with_unapproved, "--base", base, env=SIGNED)
    assert result.exit_code == 1 and f"the one of {unapproved[:12]}" in result.output

    # a PR head approved on an older main, re-parented by the queue onto a newer one: the merge is
    # still of the approved head (bound to its own base), so the merge's cleanliness decides
    tree = git(repo, "rev-parse", f"{second}^{{tree}}")
    forged = git(repo, "commit-tree", tree, "-p", q1, "-m", "not a merge")
    result = cli("gate", forged, "--base", base, env=SIGNED)
    assert result.exit_code == 1
