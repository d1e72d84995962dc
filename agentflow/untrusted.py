"""Untrusted blocks: how change content is presented to the verifier.

Everything a change brings (the diff, file names, commit messages, check output, the plan when the
change edits it, the pull-request text) is content under review, never instructions. Each piece is
wrapped in a labelled block whose markers carry a random nonce chosen per prompt, so content cannot
close its block early by writing the marker: only markers with the prompt's nonce count.
"""

from __future__ import annotations

import secrets

MARK = "UNTRUSTED"


def new_nonce() -> str:
    return secrets.token_hex(6)


def block(label: str, text: str, nonce: str) -> str:
    """``text`` between ``<<<UNTRUSTED label nonce>>>`` and ``<<<END UNTRUSTED label nonce>>>``."""
    body = text.replace(nonce, "[nonce removed]")
    return f"<<<{MARK} {label} {nonce}>>>\n{body.rstrip()}\n<<<END {MARK} {label} {nonce}>>>"


def preview(diff: str) -> dict[str, str]:
    """The untrusted-block context keys of a verifier prompt, for ``build --dry-run``."""
    nonce = new_nonce()
    return {
        "untrusted_nonce": nonce,
        "diff_block": block("diff", diff, nonce),
        "files_block": block("file-names", "", nonce),
        "commits_block": block("commit-messages", "", nonce),
        "check_output_block": "",
        "plan_block": "",
        "pr_block": "",
    }
