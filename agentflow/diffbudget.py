"""Share the verifier's diff budget fairly between the changed files ("water-filling").

A plain ``diff[:limit]`` lets a pull request hide its payload behind churn (a regenerated lock
file sorted before ``src/``). Here every file whose diff fits a fair share of the budget is shown
whole; only the largest files are cut, each with a marker line naming the file, how many
characters are not shown and how to read them. File order is kept and the total, markers
included, stays within ``limit``. A payload inside one very large file is still cut at that
file's share (docs/security.md).
"""

from __future__ import annotations

HEADER = "diff --git "


def split_files(diff: str) -> list[tuple[str, str]]:
    """``(path, text)`` per file at each ``diff --git`` header; text before the first header is ``("", text)``."""
    parts: list[tuple[str, str]] = []
    start = 0
    pos = 0 if diff.startswith(HEADER) else diff.find("\n" + HEADER)
    while pos != -1:
        cut = pos if pos == 0 else pos + 1
        if cut > start:
            parts.append((_path(diff[start:cut]), diff[start:cut]))
        start = cut
        pos = diff.find("\n" + HEADER, cut)
    if start < len(diff):
        parts.append((_path(diff[start:]), diff[start:]))
    return parts


def _path(chunk: str) -> str:
    """The file a chunk is about: from its ``+++``/``---``/``rename to`` lines before the first hunk
    (an added line inside a hunk can read ``+++ b/x``), else from the header. Splitting the header at
    its last `` b/`` named ``README.md`` for a file ``src/app.py b/README.md``: the marker and the
    prompt's list of cut files sent the verifier to the wrong file (tested)."""
    if not chunk.startswith(HEADER):
        return ""
    lines = chunk.split("\n")
    header = lines[0][len(HEADER) :]
    found: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("@@") or line.startswith(HEADER):
            break
        for prefix in ("+++ b/", '+++ "b/', "--- a/", '--- "a/', "rename to ", "copy to "):
            if line.startswith(prefix):
                found.setdefault(prefix[:4], line[len(prefix) :].rstrip('"') if '"' in prefix else line[len(prefix) :])
    for key in ("+++ ", "rena", "copy", "--- "):
        if key in found:
            return found[key]
    if header.startswith("a/") and (len(header) - 5) % 2 == 0:  # a/<path> b/<path>, the same path twice
        half = (len(header) - 5) // 2
        if header[2 : 2 + half] == header[5 + half :] and header[2 + half : 5 + half] == " b/":
            return header[2 : 2 + half]
    return header.rsplit(" b/", 1)[-1] if " b/" in header else header


def marker(path: str, hidden: int) -> str:
    name = path or "the diff preamble"
    return (
        f"\n[agentflow: the diff of {name} was cut here: {hidden} more characters not shown; "
        f"read the file with read_file or run `git diff` with run_command]\n"
    )


def shares(sizes: list[int], limit: int) -> list[int]:
    """Water-filling: the largest allowance per file such that the sum stays within ``limit``."""
    alloc = [0] * len(sizes)
    remaining, left = limit, len(sizes)
    for i in sorted(range(len(sizes)), key=lambda k: sizes[k]):
        share = remaining // left
        alloc[i] = min(sizes[i], share)
        remaining -= alloc[i]
        left -= 1
    return alloc


def fit(diff: str, limit: int) -> tuple[str, list[str]]:
    """``diff`` within ``limit`` characters and the paths of the files not shown in full."""
    if len(diff) <= limit:
        return diff, []
    files = split_files(diff)
    alloc = shares([len(text) for _, text in files], limit)
    out: list[str] = []
    cut_files: list[str] = []
    for (path, text), budget in zip(files, alloc, strict=True):
        if budget >= len(text):
            out.append(text)
            continue
        cut_files.append(path)
        keep = max(0, budget - len(marker(path, len(text))))
        newline = text.rfind("\n", 0, keep)
        keep = newline + 1 if newline > 0 else keep
        note = marker(path, len(text) - keep)
        out.append(text[:keep] + note[: max(0, budget - keep)])
    return "".join(out), cut_files
