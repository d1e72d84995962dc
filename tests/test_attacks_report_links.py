"""Attacks through the report files CI asks agentflow to write into the change's checkout.

The CI templates run ``agentflow verify --sarif agentflow.sarif`` (and ``--junit``, ``--md``,
``--json``, ``--output``) in the pull request's checkout, where the change decides what lies at
those paths. Committed as a symbolic link (``agentflow.sarif -> /any/host/file``, or a folder
``reports -> /elsewhere`` for ``--junit reports/x.xml``), agentflow wrote its report through the
link: outside the repository, over any file the job's user can write (an executable on the job's
``PATH`` that a later step runs, with the signing key in its environment: a file name from the
change inside the report is shell code to ``bash``), tested before the fix. A report file is now
written only as a regular file reached without a link below the folder agentflow runs in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentflow.errors import UsageError
from agentflow.files import write_report_file
from tests.build_helpers import verifier_session, write_script
from tests.helpers import git


def _pull_request_with(repo: Path, links: dict[str, str]) -> None:
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "app.py").write_text("x = 1\n")
    for name, target in links.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, repo / name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")


@pytest.mark.parametrize(
    ("option", "path", "links"),
    [
        ("--sarif", "agentflow.sarif", {"agentflow.sarif": "../outside/victim"}),
        ("--junit", "reports/agentflow.xml", {"reports": "../outside"}),
        ("--output", "agentflow.json", {"agentflow.json": "../outside/victim"}),
    ],
)
def test_verify_does_not_write_a_report_through_a_link_the_change_committed(
    repo: Path, cli, option: str, path: str, links: dict[str, str]
) -> None:
    outside = repo.parent / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("#!/bin/sh\necho the job's own tool\n")
    _pull_request_with(repo, links)
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})

    extra = ["--format", "json"] if option == "--output" else []
    result = cli("verify", "--base", "main", "--script", str(script), *extra, option, path)

    assert victim.read_text() == "#!/bin/sh\necho the job's own tool\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.output and path.split("/")[0] in result.output
    assert "write the report elsewhere or remove the link" in result.output, result.output


def test_a_report_replaces_nothing_but_a_regular_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo.xml")
    with pytest.raises(UsageError, match="not a regular file"):
        write_report_file(Path("fifo.xml"), "x")
    (tmp_path / "old.json").write_text("old")
    write_report_file(Path("old.json"), "new\n")
    assert (tmp_path / "old.json").read_text() == "new\n"
    write_report_file(Path("sub/dir/new.md"), "made\n")  # folders are made, as before
    assert (tmp_path / "sub" / "dir" / "new.md").read_text() == "made\n"
    write_report_file(tmp_path / "abs.json", "absolute\n")
    assert (tmp_path / "abs.json").read_text() == "absolute\n"


def test_a_path_outside_the_checkout_is_written_as_the_user_typed_it(tmp_path: Path, monkeypatch) -> None:
    """What the user (or CI) typed outside the checkout is theirs: /tmp -> /private/tmp on macOS,
    /dev/stdout. The checkout is the folder holding .git above the working directory."""
    work, real = tmp_path / "work", tmp_path / "real"
    (work / ".git").mkdir(parents=True)
    (work / "sub").mkdir()
    real.mkdir()
    os.symlink(real, tmp_path / "linked")
    monkeypatch.chdir(work / "sub")
    write_report_file(tmp_path / "linked" / "r.json", "ok\n")
    assert (real / "r.json").read_text() == "ok\n"
    os.symlink(real / "r.json", tmp_path / "final-link.json")
    write_report_file(tmp_path / "final-link.json", "through\n")
    assert (real / "r.json").read_text() == "through\n"
    os.symlink(real, work / "reports")  # ... but a link inside the checkout, above the working directory
    with pytest.raises(UsageError, match="symbolic link"):
        write_report_file(Path("../reports/r.json"), "x")
    assert (real / "r.json").read_text() == "through\n"


def test_the_gitlab_job_removes_the_report_paths_before_the_shell_writes_one() -> None:
    """The GitLab job writes the code-quality report with the shell's ``>``, which follows a link."""
    import yaml

    from agentflow.ci import Pin, gitlab_ci

    job = yaml.safe_load(gitlab_ci(Pin(install="agentflow==1.0")))["agentflow"]
    script = job["script"]
    removing = next(i for i, line in enumerate(script) if line.startswith("rm -f "))
    writing = [i for i, line in enumerate(script) if ">" in line.split("#")[0]]
    assert writing and all(removing < i for i in writing), script
    for name in ("agentflow-junit.xml", "agentflow.sarif", "gl-code-quality-report.json"):
        assert name in script[removing]
