"""Checkout rule: content that a clone checks out as something other than what the change shows.

The verifier, the checks' diff and the rules read the change's blobs. A Git LFS pointer file is a blob
naming content kept on the LFS server: a clone with git-lfs (every developer machine and CI job that
uses LFS) checks out that content, which nobody reviewed, as the gitlink rule says of submodules. A
``.gitattributes`` line can also make the checked-out file differ from its blob: ``ident`` writes the
blob's id into every ``$Id$`` (code that tests for the literal takes another branch after checkout),
``working-tree-encoding`` re-encodes it, and a ``filter`` other than ``lfs`` (git-crypt's, a
developer's own) runs a driver over it; ``export-subst`` makes ``git archive`` (a forge's source
downloads and release tarballs) expand ``$Format:...$`` with the commit's subject, author or tags. Each is a ``checkout_differs`` finding: high, except an LFS
pointer to media (images, audio, video, fonts), which is medium. So is a changed ``.lfsconfig`` (where
every clone's git-lfs fetches and pushes), and a text file that attributes the change brings make git
show as ``Binary files ... differ`` (``-diff``, ``binary``): the verifier's diff holds none of its
lines, as is a script or source file a NUL byte makes binary (bash and node run it). ``export-ignore``
(an archive without a reviewed file) is medium, ``eol=crlf`` (a CR before each
LF on checkout) low.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from agentflow.rules import Finding, Rule, finding
from agentflow.rules.change import Change, FileDiff

RULE = "checkout_differs"
_LFS_POINTER = re.compile(r"^version https://(git-lfs|hawser)\.github\.com/spec/v\d+\s*$")
_MEDIA = frozenset(
    re.split(
        r"\s+",
        ".png .jpg .jpeg .gif .webp .bmp .tif .tiff .ico .psd .xcf .kra .exr .hdr .tga .dds .mp3 .wav .ogg .flac "
        ".aac .m4a .mp4 .mov .avi .mkv .webm .ttf .otf .woff .woff2 .fbx .obj .blend .glb .gltf .stl",
    )
)
SUGGESTION = (
    "commit the content itself (or change .gitattributes on the base branch); a human who reviewed what a "
    "checkout gets approves with `agentflow approve --override --reason ...`"
)


def _first_line(change: Change, file: FileDiff) -> str | None:
    text = change.new_text(file)
    if text is not None:
        return text.split("\n", 1)[0]
    return next((line.text for line in file.added if line.new == 1), None)


# attributes under which git writes other bytes than the blob's: ``ident`` on checkout, ``export-subst``
# in ``git archive`` (a forge's source tarballs and zip downloads, release archives): it expands
# ``$Format:%s$`` to the commit's subject, ``%an`` its author, ``%(describe)`` a tag name, text the
# change's author writes outside every file the verifier and the rules read
SUBSTITUTED = ("ident", "export-subst")


# attributes under which a checkout or an archive differs less: ``export-ignore`` leaves a reviewed file
# out of every archive (a module the code falls back without; common for tests and CI folders), and
# ``eol=crlf`` writes a CR before each LF on checkout (code reading its own bytes sees another file;
# usual for ``*.bat``): recorded, not blocking
LESSER = {"export-ignore": "medium", "eol=crlf": "low"}


def _attribute_hits(file: FileDiff) -> list[tuple[int | None, str, str]]:
    hits = []
    for line in file.added:
        tokens = line.text.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        for token in tokens[1:]:
            name, _, value = token.partition("=")
            if token in SUBSTITUTED or name == "working-tree-encoding" or name == "filter" and value != "lfs":
                hits.append((line.new, token, "high"))
            elif token in LESSER:
                hits.append((line.new, token, LESSER[token]))
    return hits


# what a shell, an interpreter or a build tool runs although git calls it binary: bash and node run a
# file holding a NUL byte (git's binary test), so the verifier's diff and every rule saw
# ``Binary files ... differ`` for a script whose payload ran in the checks and on every checkout
CODE_SUFFIXES = frozenset(
    re.split(
        r"\s+",
        ".sh .bash .zsh .ksh .fish .js .mjs .cjs .jsx .ts .mts .cts .tsx .rb .pl .pm .php .lua .tcl .r .ps1 .psm1 "
        ".bat .cmd .mk .make .gradle .kts .groovy .awk .sed .vim .el .c .h .cc .cpp .cxx .hpp .hh",
    )
)
CODE_NAMES = frozenset({"makefile", "gnumakefile", "dockerfile", "containerfile", "justfile", "rakefile", "gemfile"})


def _binary_code(change: Change, file: FileDiff) -> bool:
    """Whether ``file``, which git shows as binary (a NUL byte: not text even with ``--text``), is a
    script or source a program runs: by its name, its executable mode, or a ``#!`` line."""
    if not file.binary or file.hidden:
        return False
    path = PurePosixPath(file.path)
    if path.suffix.lower() in CODE_SUFFIXES or path.name.lower() in CODE_NAMES or file.mode == "100755":
        return True
    if path.suffix:  # an image, an archive: never read whole for a first line
        return False
    text = change.new_text(file)
    return text is not None and text.startswith("#!")


def check_checkout(change: Change) -> list[Finding]:
    found: list[Finding] = []
    for file in change.files:
        if file.status == "deleted":
            continue
        if _binary_code(change, file):
            found.append(
                finding(
                    RULE,
                    f"{file.path} holds a NUL byte, so git shows it as `Binary files differ` and the verifier's diff "
                    "and the rules hold none of its lines, but a shell, node or make runs such a file as it is",
                    file=file.path,
                    suggestion="remove the NUL byte; a human who read the file approves with "
                    "`agentflow approve --override --reason ...`",
                )
            )
        if file.hidden:
            found.append(
                finding(
                    RULE,
                    f"{file.path} is text, but .gitattributes the change brings (`-diff`, `binary`, a binary diff "
                    "driver) make git show it as `Binary files differ`: the verifier's diff holds none of its lines",
                    file=file.path,
                    suggestion=SUGGESTION,
                )
            )
        if file.path.lower() == ".lfsconfig":
            found.append(
                finding(
                    RULE,
                    ".lfsconfig changed: it tells every clone's git-lfs where to fetch and push the LFS objects "
                    "(`lfs.url`): a server of the change's choosing gets every developer's LFS uploads",
                    file=file.path,
                    suggestion=SUGGESTION,
                )
            )
        if PurePosixPath(file.path).name.lower() == ".gitattributes":
            for number, token, severity in _attribute_hits(file):
                found.append(
                    finding(
                        RULE,
                        f"{file.path} sets `{token}`: a checkout (or, for export-subst and export-ignore, an archive) "
                        "holds other content than the tree the change shows (and the verifier and the checks' diff read)",
                        file=file.path,
                        line=number,
                        severity=severity,
                        suggestion=SUGGESTION,
                    )
                )
            continue
        first = _first_line(change, file)
        if first is not None and _LFS_POINTER.match(first):
            media = PurePosixPath(file.path).suffix.lower() in _MEDIA
            found.append(
                finding(
                    RULE,
                    f"{file.path} is a Git LFS pointer: a clone with git-lfs checks out content kept on the LFS "
                    "server, which is not in the change, so neither the verifier nor the checks saw it",
                    file=file.path,
                    severity="medium" if media else "high",
                    suggestion=SUGGESTION,
                )
            )
    return found


RULES = [
    Rule(
        RULE,
        "Git LFS pointer files (their content is not in the change), a changed `.lfsconfig`, .gitattributes "
        "`ident`, `export-subst`, `working-tree-encoding` and non-LFS `filter` lines (a checkout or an archive differs "
        "from the reviewed blob; `export-ignore` medium, `eol=crlf` low), and text files the change's attributes "
        "make git show as binary, or a script that a NUL byte makes binary (the verifier's diff holds none of their "
        "lines)",
        "high",
        check_checkout,
    ),
]
