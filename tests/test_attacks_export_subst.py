"""An archive of the approved commit holding code the change does not show.

``git archive`` (what a forge serves as a source download, a release's tarball, and what many
release jobs package) expands ``$Format:...$`` in every file marked ``export-subst`` with the commit's
metadata: ``%s`` its subject, ``%an`` its author, ``%(describe)`` a tag. A pull request that adds
``src/version.py export-subst`` and ``VERSION = "$Format:%s$"`` shows a version placeholder to the
verifier, the rules and the checks, while its commit subject (the pull request's text: a message
the rules read as prose) lands in the archive as Python: ``1.0"; __import__("os").system("...");
x="`` (tested before the fix: approved, gate open, the archive's ``version.py`` runs the command).
``export-subst`` is now a ``checkout_differs`` finding (high), as ``ident`` is.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.build_helpers import notes, verifier_session, write_plan, write_script
from tests.helpers import git

SUBJECT = '1.0"; __import__("os").system("touch /tmp/pwned"); x="'


def test_an_export_subst_attribute_is_not_approved(repo: Path, cli) -> None:
    write_plan(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / ".gitattributes").write_text("src/version.py export-subst\n")
    (repo / "src").mkdir()
    (repo / "src" / "version.py").write_text('VERSION = "$Format:%s$"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", SUBJECT, "--trailer", "Agentflow-Plan: 1")
    head = git(repo, "rev-parse", "HEAD")
    with tarfile.open(fileobj=io.BytesIO(_archive(repo, head))) as archived:
        shipped = archived.extractfile("src/version.py").read().decode()  # type: ignore[union-attr]
    assert "__import__" in shipped  # what the archive holds, and no diff shows
    script = write_script(repo, {"verifier": [verifier_session()]})

    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")

    data = json.loads(result.stdout)
    hits = [(f["file"], f["severity"]) for f in data["findings"] if f.get("pattern") == "checkout_differs"]
    assert hits == [(".gitattributes", "high")], data["findings"]
    assert result.exit_code == 1 and data["outcome"] != "approved"
    assert all(n["outcome"] != "approved" for n in notes(repo, head))
    assert cli("gate", "pr", "--base", "main").exit_code == 1


def _archive(repo: Path, commit: str) -> bytes:
    import subprocess

    return subprocess.run(["git", "archive", "--format=tar", commit], cwd=repo, capture_output=True, check=True).stdout
