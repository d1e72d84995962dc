"""The signing key's one policy (``agentflow.keys``): the same text signs the same, wherever it comes
from, and a key short enough to be found offline is refused.

Before: ``AGENTFLOW_SIGNING_KEY`` was taken as it was while the key file was stripped, so a CI secret
stored with a trailing newline (``gh secret set < key.txt``) signed as another key than the same key in
a developer's file: the approvals of one never opened the other's gate. And any key was accepted, a
1-byte one included: the signed notes sit in ``refs/notes/agentflow``, which whoever can fetch reads,
so such a key is found offline from any signed line and every approval can then be forged. Now both
sources lose their surrounding whitespace, and a key of fewer than 32 characters is exit 2 naming the
variable or the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow import keys
from agentflow.errors import UsageError
from tests.gate_helpers import add_verdict, plan_branch

KEY = "0f3c9a1e7b2d4c6a8e0f1a3b5c7d9e1f"  # 32 characters
BRANCH = "agentflow/348-capsule-isolation"


def _env(monkeypatch: pytest.MonkeyPatch, value: str | None = None, file: Path | None = None) -> None:
    for name, set_to in ((keys.SIGNING_KEY_ENV, value), (keys.SIGNING_KEY_FILE_ENV, file)):
        if set_to is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(set_to))


def test_a_key_in_the_variable_with_a_trailing_newline_is_the_same_key_as_in_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "signing.key"
    key_file.write_text(KEY + "\n")
    _env(monkeypatch, file=key_file)
    from_file = keys.signing_key()
    _env(monkeypatch, value=KEY + "\n")
    from_variable = keys.signing_key()
    _env(monkeypatch, value=f"  {KEY}\r\n")
    assert from_file == from_variable == keys.signing_key() == KEY


def test_an_approval_signed_under_the_file_opens_the_gate_under_the_variable_with_a_newline(
    repo: Path, cli, tmp_path: Path
) -> None:
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=KEY)  # what a run under the key file (stripped) signs
    result = cli("gate", BRANCH, env={keys.SIGNING_KEY_ENV: KEY + "\n"})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("short", ["k", "secret", "team-secret-key", KEY[:-1]])
def test_a_short_key_in_the_variable_is_exit_2_naming_it(repo: Path, cli, short: str) -> None:
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=short)
    result = cli("gate", BRANCH, env={keys.SIGNING_KEY_ENV: short})
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line
    assert f"{keys.SIGNING_KEY_ENV}: the signing key has {len(short)} characters, fewer than 32" in line
    assert "openssl rand -hex 32" in line
    assert KEY[:-1] not in line  # the key itself is never printed


def test_a_short_or_blank_key_file_is_exit_2_naming_the_file(repo: Path, cli, tmp_path: Path) -> None:
    plan_branch(repo)
    key_file = tmp_path / "signing.key"
    for text, problem in (("x\n", "has 1 characters"), (" \n\t\n", "is empty"), ("", "is empty")):
        key_file.write_text(text)
        result = cli("gate", BRANCH, env={keys.SIGNING_KEY_FILE_ENV: str(key_file)})
        assert result.exit_code == 2, result.output
        assert f"{key_file}: the signing key {problem}" in result.output


def test_a_blank_variable_is_refused_and_an_empty_one_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, value=" \n")
    with pytest.raises(UsageError, match=f"{keys.SIGNING_KEY_ENV}: the signing key is empty"):
        keys.signing_key()
    _env(monkeypatch, value="")  # a CI secret that is not set expands to nothing: no key, as before
    assert keys.signing_key() is None
