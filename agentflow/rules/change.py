"""What the rules read: a change as parsed unified-diff hunks, plus the other text a verifier sees.

``parse_diff`` turns ``git diff`` output into ``FileDiff`` objects (lines in order, each with its
kind and its line numbers), so a rule can look at the context around an added line: the test a
skip marker decorates, the step a ``continue-on-error`` belongs to. ``change_from_git`` builds a
``Change`` from a repository; tests build one from a diff string (``Change.from_diff``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "v": "\v"}


@dataclass(frozen=True)
class Line:
    """One line of a hunk: ``kind`` is ``+`` (added), ``-`` (removed) or `` `` (context)."""

    kind: str
    text: str
    old: int | None  # line number in the old file (None for added lines)
    new: int | None  # line number in the new file (None for removed lines)


@dataclass
class FileDiff:
    """One file of the change."""

    path: str  # the new path (the old one for a deleted file)
    old_path: str | None = None  # set when the file was renamed
    status: str = "modified"  # added | deleted | modified | renamed
    lines: list[Line] = field(default_factory=list)
    binary: bool = False
    mode: str | None = None  # the new mode when the diff names it (``120000``: a symbolic link)
    # text git showed as ``Binary files ... differ`` only because of attributes the change brought:
    # the verifier's diff holds none of its lines (``change_from_git``; the checkout rule flags it)
    hidden: bool = False

    @property
    def added(self) -> list[Line]:
        return [line for line in self.lines if line.kind == "+"]

    @property
    def removed(self) -> list[Line]:
        return [line for line in self.lines if line.kind == "-"]

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass
class Change:
    """Everything the rules look at.

    ``test_scope`` holds the changed paths a plan's scope explicitly covers (the plan lets the
    builder change them); ``texts`` are further texts the verifier reads: ``(label, text)`` pairs such
    as the commit messages, the plan brought by the change and the pull-request text.
    """

    files: list[FileDiff] = field(default_factory=list)
    commit_messages: list[str] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    test_scope: frozenset[str] = frozenset()
    read_new: Callable[[str], str | None] = field(default=lambda path: None, repr=False)
    # the symbolic links of the new tree that ``links_wanted`` picked (path -> target): a file the
    # change edits may be what a link the base already has leads to
    links: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_diff(cls, diff: str, **kwargs: object) -> Change:
        return cls(files=parse_diff(diff), **kwargs)  # type: ignore[arg-type]

    def new_text(self, file: FileDiff) -> str | None:
        """The whole new content of ``file`` when a reader is available (else None)."""
        if file.status == "deleted":
            return None
        return self.read_new(file.path)


def _unquote(path: str) -> str:
    """A path as git prints it: C-quoted (``"a\\tb"``) when it has unusual characters."""
    if not (path.startswith('"') and path.endswith('"')):
        return path
    body, out, i = path[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567":
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def _strip_prefix(path: str) -> str | None:
    path = _unquote(path.split("\t")[0] if not path.startswith('"') else path)
    if path == "/dev/null":
        return None
    return path[2:] if path[:2] in ("a/", "b/") else path


def parse_diff(text: str) -> list[FileDiff]:
    """The files of a unified diff as ``git diff`` prints it (rename detection on or off)."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    old_no = new_no = 0
    in_hunk = False
    for raw in text.split("\n"):  # as git splits: splitlines() also breaks at U+2028, \x1c, \x85... (tested)
        if raw.startswith("diff --git "):
            current = FileDiff(path="")
            files.append(current)
            in_hunk = False
            parts = raw[len("diff --git ") :]
            if not parts.startswith('"') and " b/" in parts:
                current.path = parts.split(" b/", 1)[1]
            continue
        if current is None:
            continue
        if in_hunk and raw[:1] in ("+", "-", " ", "\\", ""):
            kind = raw[:1] or " "
            if kind == "\\":
                continue
            body = raw[1:]
            if kind == "+":
                current.lines.append(Line("+", body, None, new_no))
                new_no += 1
            elif kind == "-":
                current.lines.append(Line("-", body, old_no, None))
                old_no += 1
            else:
                current.lines.append(Line(" ", body, old_no, new_no))
                old_no += 1
                new_no += 1
            continue
        match = _HUNK.match(raw)
        if match:
            old_no, new_no, in_hunk = int(match.group(1)), int(match.group(3)), True
            continue
        in_hunk = False
        if raw.startswith("new file mode"):
            current.status = "added"
            current.mode = raw.split()[-1]
        elif raw.startswith("new mode "):
            current.mode = raw.split()[-1]
        elif raw.startswith("index ") and current.mode is None and len(raw.split()) == 3:
            current.mode = raw.split()[-1]  # index 1234abc..5678def 120000: the mode stayed
        elif raw.startswith("deleted file mode"):
            current.status = "deleted"
        elif raw.startswith("rename from "):
            current.old_path = _unquote(raw[len("rename from ") :])
            current.status = "renamed"
        elif raw.startswith("rename to "):
            current.path = _unquote(raw[len("rename to ") :])
        elif raw.startswith("--- "):
            old = _strip_prefix(raw[4:])
            if old is not None and not current.path:
                current.path = old
        elif raw.startswith("+++ "):
            new = _strip_prefix(raw[4:])
            if new is not None:
                current.path = new
        elif raw.startswith("Binary files"):
            current.binary = True
    return [f for f in files if f.path]


def diff_text(lines: Sequence[str]) -> str:
    """Join fixture lines into a diff (tests write diffs as lists of lines)."""
    return "\n".join(lines) + "\n"


def change_from_git(
    repo: object,
    base: str,
    head: str,
    *,
    texts: Sequence[tuple[str, str]] = (),
    test_scope: Callable[[str], bool] | None = None,
    messages: Sequence[str] | None = None,
) -> Change:
    """The change ``base..head`` of ``repo`` (an ``agentflow.git.Repo``), with its commit messages
    (``messages``: already read by the caller, ``git log --format=%B%x00 base..head``, stripped)."""
    from agentflow.git import run_git

    root = repo.root  # type: ignore[attr-defined]

    def git(*args: str, check: bool = True) -> str:
        proc = run_git(args, root, text=False)
        if check and proc.returncode != 0:
            from agentflow.errors import GitError

            raise GitError(f"`git {' '.join(args)}` failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode("utf-8", errors="replace") if proc.returncode == 0 else ""

    options = ("-c", "core.quotePath=false", "diff", "-M", "--no-color", "--no-ext-diff", "--no-textconv")
    files = parse_diff(git(*options, f"{base}..{head}"))
    if messages is None:
        log = git("log", "--format=%B%x00", f"{base}..{head}")
        messages = [m.strip() for m in log.split("\x00") if m.strip()]
    shown_binary = {f.path for f in files if f.binary}
    files = _as_text(files, git(*options, "--text", f"{base}..{head}", "--", *_paths(files)) if _paths(files) else "")
    if shown_binary:
        text = [f for f in files if f.path in shown_binary and not f.binary]
        hidden = _hidden_by_change(root, base, [f.path for f in text])
        files = [replace(f, hidden=True) if f.path in hidden else f for f in files]
    cache: dict[str, str | None] = {}
    tree: set[str] = set()  # every path of the new tree and the folders above them, once listed

    def read_new(path: str) -> str | None:
        if path not in cache:
            plain = posixpath.normpath(path) == path and path.split("/")[0] not in ("", ".", "..")
            if tree and plain and path not in tree:
                # in no form the tree holds: `git show` would fail and give "" (the manifests every
                # change is asked for, package.json and the like: three git processes a run, #19 item 5)
                cache[path] = ""
                return ""
            out = git("show", f"{head}:{path}", check=False)  # "" when it cannot be read
            cache[path] = out if len(out) < 2_000_000 else None
        return cache[path]

    scoped = frozenset(f.path for f in files if test_scope is not None and test_scope(f.path))
    links: dict[str, str] = {}
    if files:
        from agentflow.rules.autorun import link_wanted

        listed = run_git(["ls-tree", "-r", "-z", "--full-tree", head], root, text=False)
        entries = (
            [entry.partition(b"\t") for entry in listed.stdout.split(b"\0") if entry] if listed.returncode == 0 else []
        )
        for _, _, name in entries:
            path = name.decode("utf-8", "surrogateescape")
            while path and path not in tree:
                tree.add(path)
                path = posixpath.dirname(path)
        for meta, _, name in entries:
            path = name.decode("utf-8", "surrogateescape")
            if meta.startswith(b"120000 ") and link_wanted(path) and (target := read_new(path)) is not None:
                links[path] = target
    return Change(
        files=files,
        commit_messages=list(messages),
        texts=list(texts),
        test_scope=scoped,
        read_new=read_new,
        links=links,
    )


def _hidden_by_change(root: Path, base: str, paths: Sequence[str]) -> set[str]:
    """Which of ``paths`` (text that git showed as binary) the base's own attributes do not mark so.

    The diff is read in the change's checkout, whose ``.gitattributes`` are the change's: a
    ``src/app.py -diff`` line there made the payload's diff ``Binary files ... differ`` in the
    verifier's prompt (tested). Asked of the base's tree in a scratch index (``check-attr --cached``
    reads ``.gitattributes`` from the index; ``.git/info/attributes`` and ``core.attributesFile``, the
    user's, count in both): a path the base marks ``-diff`` or with a binary diff driver is the base's
    choice. Any failure counts every path as hidden (fail closed)."""
    import os
    import tempfile

    from agentflow.git import run_git

    if not paths:
        return set()
    with tempfile.TemporaryDirectory(prefix="agentflow-attr-") as scratch:
        env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
        if run_git(["read-tree", base], root, env=env).returncode != 0:
            return set(paths)
        proc = run_git(["check-attr", "--cached", "-z", "diff", "--", *paths], root, env=env)
    if proc.returncode != 0:
        return set(paths)
    fields = proc.stdout.split("\0")
    hidden = set(paths)
    drivers: dict[str, bool] = {}
    for path, _, value in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        if value in ("unset", "unspecified", "set"):
            binary = value == "unset"
        else:  # a driver: binary when the (user's, trusted) config says so
            if value not in drivers:
                out = run_git(["config", "--type=bool", "--get", f"diff.{value}.binary"], root)
                drivers[value] = out.stdout.strip() == "true"
            binary = drivers[value]
        if binary:
            hidden.discard(path)
    return hidden


def _paths(files: Sequence[FileDiff]) -> list[str]:
    """The paths (old and new) of the files git printed as binary."""
    return sorted({p for f in files if f.binary for p in (f.path, f.old_path) if p})


def _as_text(files: list[FileDiff], text_diff: str) -> list[FileDiff]:
    """``files`` with each file git called binary replaced by its ``--text`` diff when that holds no
    NUL byte: the change's own ``.gitattributes`` (``-diff``, ``binary``), which apply in its checkout,
    had hidden a test file's removed assertions from every rule as ``Binary files ... differ``."""
    if not text_diff:
        return files
    texts = {f.path: f for f in parse_diff(text_diff) if not f.binary and not any("\0" in x.text for x in f.lines)}
    return [texts.get(f.path, f) if f.binary else f for f in files]


def iter_blocks(lines: Sequence[Line], kinds: str) -> Iterator[list[Line]]:
    """Runs of consecutive lines whose kind is in ``kinds``."""
    block: list[Line] = []
    for line in lines:
        if line.kind in kinds:
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block
