"""Budget rule: the verifier's diff did not show the whole change.

The verifier's prompt holds at most ``MAX_DIFF_CHARS`` of diff, shared per file
(``agentflow.diffbudget``); a file over its share is cut with a marker asking the verifier to read the
rest. Whether it did is the model's choice, and a change can make the share as small as it likes: a
thousand generated files of 190 characters each left every file, the 300-character payload's among
them, at 79 characters (less than its marker): the verifier was shown no line of the payload and
approved (tested). An approval then vouches for code nobody was shown, so a cut is a ``diff_cut``
finding: high when a file other than a lock file, a test snapshot or a data table is cut, medium when
only those are (a regenerated ``package-lock.json``: recorded, not blocking). A cut file the verifier
then read whole with agentflow's ``read_file`` (the file as committed, not truncated) was shown to it
and no longer counts: the finding is judged again after its session (``Run.judge_cut``), and so does
one the claude-code verifier read whole with Claude Code's ``Read`` (``read_whole``: no offset or limit
that skips lines, a file within ``Read``'s own limits of lines and line length, and a result at least as
long as the whole file with its line numbers). Reads it made otherwise (``cat`` in a command, a ``Read``
of some lines, a ``Grep``) do not count.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import PurePosixPath

from agentflow.rules import Finding, finding

RULE = "diff_cut"
RULE_DOC = "the verifier's diff did not show every file in full (the diff budget cut them)"
# what no program runs as code, and what grows past a share by itself: lock files (their resolved URLs
# are still the change's: medium, recorded), test snapshots, data tables
BULK_NAMES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "cargo.lock",
        "gemfile.lock",
        "composer.lock",
        "go.sum",
        "mix.lock",
        "pubspec.lock",
        "packages.lock.json",
        "flake.lock",
        "podfile.lock",
        "gradle.lockfile",
    }
)
BULK_SUFFIXES = (".snap", ".csv", ".tsv")
SHOWN = 10  # cut files named in the finding's message


# Claude Code's Read: at most this many lines from the start, each cut at this many characters
READ_LINES = 2000
READ_LINE_CHARS = 2000


def read_whole(data: dict[str, object], output_chars: int, text: str | None) -> bool:
    """Whether a successful Claude Code ``Read`` with input ``data`` returned every line of the file as
    committed (``text``): no ``offset`` past the first line or ``limit`` short of the last, a file
    ``Read`` returns whole (``READ_LINES``, ``READ_LINE_CHARS``), and ``output_chars`` no fewer than
    the file numbered as ``Read`` numbers it (``1<TAB>line``): an error, a token-limit refusal or a
    shortened answer has fewer."""
    if text is None:
        return False
    lines = text.split("\n")
    offset, limit = data.get("offset"), data.get("limit")
    if offset not in (None, 0, 1) or isinstance(offset, bool):
        return False
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < len(lines)):
        return False
    if len(lines) > READ_LINES or max(map(len, lines)) > READ_LINE_CHARS:
        return False
    numbered = sum(len(str(n)) + 1 + len(line) for n, line in enumerate(lines, 1)) + len(lines) - 1
    return output_chars >= numbered


def bulk(path: str) -> bool:
    """Whether ``path`` is a lock file, a test snapshot or a data table (its cut is medium)."""
    name = PurePosixPath(path).name.lower()
    return name in BULK_NAMES or name.endswith(BULK_SUFFIXES)


def cut_findings(diff: str, limit: int, read: Collection[str] = ()) -> list[Finding]:
    """One ``diff_cut`` finding for the files ``agentflow.diffbudget.fit`` cuts of ``diff`` within
    ``limit`` (what the verifier's prompt holds) and the verifier did not ``read`` whole, or none."""
    from agentflow.diffbudget import fit

    cut_files = [path for path in fit(diff, limit)[1] if path not in read]
    if not cut_files:
        return []
    code = [path for path in cut_files if not bulk(path)]
    named = ", ".join(f"`{path}`" for path in (code or list(cut_files))[:SHOWN])
    more = len(code or cut_files) - SHOWN
    what = f"{len(cut_files)} file(s) were cut in the verifier's diff" + (
        f" ({len(code)} of them code or text other than lock files, snapshots and data)" if code else ""
    )
    return [
        finding(
            RULE,
            f"{what}: {named}{f' and {more} more' if more > 0 else ''}; the verifier was shown only part of them, "
            "so its approval does not cover the rest",
            file=(code or list(cut_files))[0],
            severity="high" if code else "medium",
            suggestion="the verifier reads each cut file whole (`read_file`: the file as committed), the change "
            "is split into smaller ones, or a human who read the cut files records "
            "`agentflow approve --override --reason ...`",
        )
    ]
