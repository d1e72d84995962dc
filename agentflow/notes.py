"""Reading verdict notes: the one parser of ``refs/notes/agentflow`` lines (gate, metrics, show).

A verdict line is JSON (DESIGN.md "Git"). ``parse_line`` turns it into a ``NoteLine`` without
pydantic (the gate runs in git hooks: start-up counts), with the same types and defaults as
``verdict.VerdictNote`` so that the canonical JSON, and therefore the signature check, is the same.

``note_history`` reads every line ever recorded for some commits in the history of the notes ref,
in one ``git log -p`` limited to those commits' note paths (every fanout spelling): a line someone
deleted later still counts, so a revocation cannot be removed by editing the notes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from agentflow.errors import GitError
from agentflow.git import is_full_id, run_git
from agentflow.git import note_paths as git_note_paths

NOTES_REF = "refs/notes/agentflow"  # = agentflow.git.NOTES_REF
# A run's outcomes in report order, as plain strings (``agentflow.events.Outcome``: a test holds them equal)
OUTCOMES: tuple[str, ...] = ("approved", "changes_requested", "rejected", "no_verdict", "capped")
# VerdictNote's declared fields and their defaults: the canonical JSON includes them all
DEFAULTS: dict[str, Any] = {
    "v": 1,
    "plan": None,
    "run": None,
    "decision": None,
    "base": None,
    "patch_id": None,
    "checks": [],
    "models": {},
    "prompts_sha": None,
    "findings": [],
    "override": False,
    "reason": None,
    "by": None,
}
_OPTIONAL_STR = ("plan", "run", "decision", "base", "patch_id", "prompts_sha", "reason", "by", "sig")


class NoteLine:
    """One parsed verdict line; ``data`` is the full JSON object with the declared defaults filled in."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.data.get(name, DEFAULTS.get(name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoteLine) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.to_line())

    @property
    def base_tree(self) -> str | None:
        value = self.data.get("base_tree")
        return value if isinstance(value, str) and value else None

    @property
    def timestamp(self) -> datetime:
        try:
            ts = datetime.fromisoformat(str(self.data.get("ts", "")))
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)

    def canonical(self) -> bytes:
        return canonical_json({k: v for k, v in self.data.items() if k != "sig"})

    def signature_valid(self, key: str) -> bool:
        sig = self.data.get("sig")
        if not sig or not isinstance(sig, str) or "ts" not in self.data:
            return False
        import hmac  # here: the gate checks signatures only when a key is configured (start-up)

        return hmac.compare_digest(sign(key, self.canonical()), sig)

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return dict(self.data)

    def to_line(self) -> str:
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(data: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: what a signature covers."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: str, canonical: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def parse_line(line: str) -> NoteLine | None:
    """The verdict in ``line``, or None when it is not one (bad JSON, wrong types, unknown outcome)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("outcome") not in OUTCOMES or not isinstance(data.get("tree"), str):
        return None
    for name in _OPTIONAL_STR:
        if data.get(name) is not None and not isinstance(data[name], str):
            return None
    if not isinstance(data.get("v", 1), int) or isinstance(data.get("v", 1), bool):
        return None
    if not isinstance(data.get("override", False), bool):
        return None
    if "ts" in data and not isinstance(data["ts"], str):
        return None
    checks, findings, models = data.get("checks", []), data.get("findings", []), data.get("models", {})
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        return None
    if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
        return None
    if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
        return None
    return NoteLine({**DEFAULTS, **data})


def parse_lines(lines: Iterable[str]) -> tuple[list[NoteLine], int]:
    """The verdicts among ``lines`` and how many lines were not verdicts."""
    notes, bad = [], 0
    for line in lines:
        note = parse_line(line)
        if note is None:
            bad += 1
        else:
            notes.append(note)
    return notes, bad


def note_paths(commit: str) -> list[str]:
    """Where git may keep ``commit``'s note in a notes tree: flat, or fanned out by 2 digits a level,
    at any depth (``agentflow.git.note_paths``): a few hundred notes on made-up ids that fill git's
    notes trie along a commit's path make the next ``git notes add`` for it write 2/2/2/34 (tested)."""
    return git_note_paths(commit)


def note_history(root: Any, commits: Iterable[str], ref: str = NOTES_REF) -> dict[str, list[str]]:
    """Every line ever recorded in the notes of ``commits`` (oldest first, each once), in one git call.

    Added, removed and context lines of every notes commit (merges diffed against their first
    parent, so what a merge brings in counts too). Missing ref: nothing. A failing ``git log``
    raises GitError (the gate stays closed).
    """
    wanted = {c for c in commits if c}
    if not wanted:
        return {}
    paths = [p for c in sorted(wanted) for p in note_paths(c)]
    return _history(root, ref, paths, wanted)


def _history(root: Any, ref: str, paths: list[str], wanted: set[str] | None) -> dict[str, list[str]]:
    """``note_history``'s walk: the lines of the notes of ``wanted`` (every noted commit when None)."""
    proc = run_git(
        ["log", "--reverse", "-p", "--no-color", "--no-renames", "--no-ext-diff", "--no-textconv"]
        # --full-history: a path-limited walk would otherwise follow only a merge's TREESAME parent
        # and never read the other side (a fast-forward merge whose tree drops a rejection: tested)
        # --text: a note blob holding a NUL byte, or marked -diff by a .gitattributes in the checkout
        # (a pull request's), is diffed as "Binary files differ", which holds no line (tested);
        # the prefixes: what the parser below reads, whatever diff.noprefix or diff.mnemonicPrefix say
        + ["--full-history", "--diff-merges=first-parent", "--text", "--src-prefix=a/", "--dst-prefix=b/"]
        + ["--format=%x00", ref, "--", *paths],
        root,
        text=False,
    )
    if proc.returncode != 0:
        if b"unknown revision" in proc.stderr or b"bad revision" in proc.stderr:
            return {}
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"`git log {ref}` failed: {detail[-1] if detail else proc.returncode}", where=str(root))
    result: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    current: str | None = None
    in_hunk = False
    # "\n" only, as git splits: splitlines() also breaks at \r, U+2028, U+0085, \x1c-\x1e..., so a planted
    # line could end the hunk that adds a rejection, and a verdict holding U+2028 fell apart (tested)
    for raw in proc.stdout.decode("utf-8", "replace").split("\n"):
        if raw.startswith("diff --git a/"):
            path = raw[len("diff --git a/") :].split(" b/", 1)[0]
            current = path.replace("/", "")
            current = current if (current in wanted if wanted is not None else is_full_id(current)) else None
            in_hunk = False
            continue
        if raw.startswith("@@"):
            in_hunk = True
            continue
        if not in_hunk or current is None or not raw or raw[0] not in "+- ":
            if raw.startswith("\x00"):
                in_hunk, current = False, None
            continue
        line = raw[1:]
        if not line.strip():
            continue
        bucket = seen.setdefault(current, set())
        if line not in bucket:
            bucket.add(line)
            result.setdefault(current, []).append(line)
    return result


def tree_history(root: Any, tree: str, ref: str = NOTES_REF) -> list[tuple[str, NoteLine]]:
    """(commit, verdict) for every verdict line about ``tree`` ever recorded on any commit, in one
    ``git log -p`` over the whole notes history (a note deleted since still counts). What a line that
    names no commit (from before the ``commit`` field) is judged with: it may have been copied from
    the commit it was written for onto a sibling with the same tree, so the content's later verdicts
    anywhere decide (``agentflow.gate``)."""
    found = []
    for commit, lines in _history(root, ref, [], None).items():
        for line in lines:
            if tree in line and (note := parse_line(line)) is not None and note.tree == tree:
                found.append((commit, note))
    return found


def verdict_lines(notes_map: dict[str, list[str]]) -> list[tuple[str, int, NoteLine]]:
    """(commit, line number, verdict) for every verdict line of a ``Repo.notes_map()``; others skipped."""
    found = []
    for commit, lines in notes_map.items():
        for index, line in enumerate(lines):
            note = parse_line(line)
            if note is not None:
                found.append((commit, index, note))
    return found
