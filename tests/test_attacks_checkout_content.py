"""Attacks through content a checkout gets that the change does not show.

A pull request commits ``src/app.py`` as a Git LFS pointer (three lines naming an object on the LFS
server) with a ``.gitattributes`` line routing it through ``filter=lfs``: the verifier, the rules and
the diff see the pointer, every clone with git-lfs checks out the object, code nobody reviewed. Or it
adds ``*.py ident``: git writes the blob id into each ``$Id$`` on checkout, so code that compares the
literal takes one branch in the reviewed blob and the other on every developer's disk. Both were
approved (tested before the fix); each is now a ``checkout_differs`` finding (high).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.build_helpers import notes, verifier_session, write_plan, write_script
from tests.helpers import git

POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)
ATTRIBUTES = "src/*.py filter=lfs diff=lfs merge=lfs -text\n"
IDENT = 'SAFE = "$Id$" == "$" + "Id$"\n\n\ndef farewell():\n    return "bye" if SAFE else __import__("os").getcwd()\n'


def pull_request(repo: Path, files: dict[str, str]) -> str:
    write_plan(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "farewell", "--trailer", "Agentflow-Plan: 1")
    return git(repo, "rev-parse", "HEAD")


def verify(repo: Path, cli) -> tuple[int, list[dict]]:
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    data = json.loads(result.stdout)
    return result.exit_code, [f for f in data["findings"] if f.get("pattern") == "checkout_differs"]


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ({".gitattributes": ATTRIBUTES, "src/app.py": POINTER}, [("src/app.py", "high")]),
        ({"src/app.py": POINTER}, [("src/app.py", "high")]),  # the attribute already on the base, or global
        ({".gitattributes": "*.py ident\n", "src/app.py": IDENT}, [(".gitattributes", "high")]),
        ({"src/.gitattributes": "*.py filter=crypt\n", "src/app.py": "x = 1\n"}, [("src/.gitattributes", "high")]),
        ({".gitattributes": "*.ps1 working-tree-encoding=UTF-16LE\n"}, [(".gitattributes", "high")]),
    ],
)
def test_a_pull_request_whose_checkout_differs_from_its_blobs_is_not_approved(
    repo: Path, cli, files: dict[str, str], where: list[tuple[str, str]]
) -> None:
    head = pull_request(repo, files)

    code, hits = verify(repo, cli)

    assert code == 1 and [(f["file"], f["severity"]) for f in hits] == where, hits
    assert all(n["outcome"] != "approved" for n in notes(repo, head))
    assert cli("gate", "pr", "--base", "main").exit_code == 1


def test_lfs_tracking_and_a_pointer_to_an_image_do_not_block_approval(repo: Path, cli) -> None:
    """``git lfs track`` adds ``filter=lfs`` lines; an image kept in LFS is medium (no code runs from it)."""
    pull_request(
        repo,
        {
            ".gitattributes": "*.psd filter=lfs diff=lfs merge=lfs -text\n* text=auto eol=lf\n",
            "art/logo.psd": POINTER,
            "src/app.py": "def farewell():\n    return 'bye'\n",
        },
    )

    code, hits = verify(repo, cli)

    assert [(f["file"], f["severity"]) for f in hits] == [("art/logo.psd", "medium")], hits
    assert code == 0
