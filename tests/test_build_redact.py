"""``redact`` skips the token shapes' regex for ASCII text holding none of their markers (the regex
was most of a ledger append's CPU): the skip must never let a token through. Every shape is masked
wherever it sits, in any case the shape allows, and non-ASCII text (where re's ignore-case matches
"ſ" to "s" and "İ" to "i") is matched as before."""

from __future__ import annotations

import pytest

from agentflow.redact import _TOKEN_SHAPES, MASK, redact

TOKENS = [
    "sk-ant-api03-abcdefgh12345678",
    "ghp_" + "a1" * 12,
    "gho_" + "b2" * 12,
    "ghu_" + "c3" * 12,
    "ghs_" + "d4" * 12,
    "ghr_" + "e5" * 12,
    "github_pat_" + "F6_" * 8,
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "xoxb-1234567890-abcdef",
    "Authorization: Bearer abcdefghijkl.mnop",
    "Authorization: Basic dXNlcjpwYXNzd29yZDEyMw==",
    "AUTHORIZATION: BASIC dXNlcjpwYXNzd29yZDEyMw==",
    "authorization: bAsIc dXNlcjpwYXNzd29yZDEyMw==",
    "glpat-" + "x" * 20,
    "https://user:hunter2x@example.com/repo.git",
    "authorization: baſic dXNlcjpwYXNzd29yZDEyMw==",  # non-ASCII: matched by re's ignore-case
    "authorization: BASİC dXNlcjpwYXNzd29yZDEyMw==",
]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("around", [("", ""), ('{"out": "', '"}'), ("word " * 300, " é" * 5), ("x\n", "\ny")])
def test_every_token_shape_is_masked_as_the_full_pattern_masks_it(token: str, around: tuple[str, str]) -> None:
    text = around[0] + token + around[1]
    assert _TOKEN_SHAPES.search(text), token  # the sample is one the shapes match
    assert redact(text) == _TOKEN_SHAPES.sub(MASK, text)
    assert MASK in redact(text)


def test_text_without_a_marker_is_returned_as_it_is() -> None:
    text = '{"kind": "model_called", "tokens": 1234, "note": "' + "plain words, no token " * 100 + '"}'
    assert redact(text) == text
