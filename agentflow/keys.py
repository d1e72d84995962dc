"""The signing key: read once per process, in one place (#12 item 8, #13 item 5).

``AGENTFLOW_SIGNING_KEY`` holds the key, or ``AGENTFLOW_SIGNING_KEY_FILE`` names a file holding it;
setting both is an input error. One policy for both sources (``_checked``): surrounding whitespace is
not part of the key (a secret stored with a trailing newline signed as another key than the same text
in a file, tests/test_attacks_key_policy.py), and a key of fewer than ``MIN_KEY_CHARS`` characters is
exit 2 naming the variable or file (a 1-byte key was accepted, and the signed notes are public: a
short key is found offline from any of them). The key is read the first time
``signing_key`` is called for a given environment and kept for the process (a file changed or
deleted later, e.g. by a builder, changes nothing), and registered with ``redact`` so that it and
its hex and base64 forms are masked in everything agentflow writes. Both variable names are secret
names, so ``redact.scrubbed_env`` keeps them from every child process; only the orchestrator signs.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentflow.errors import UsageError
from agentflow.redact import register_secret

SIGNING_KEY_ENV = "AGENTFLOW_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "AGENTFLOW_SIGNING_KEY_FILE"
MIN_KEY_CHARS = 32  # what `openssl rand -hex 16` gives (128 bits); RFC 2104: no shorter than the hash's 32 bytes
KEY_FIX = "use a random key of at least 32 characters: `openssl rand -hex 32`"
_cache: dict[tuple[str | None, str | None], str | None] = {}


def _checked(key: str, where: str) -> str:
    """``key`` without surrounding whitespace; UsageError (exit 2) naming ``where`` when what is left
    is empty or shorter than ``MIN_KEY_CHARS``."""
    key = key.strip()
    if not key:
        raise UsageError("the signing key is empty (only whitespace)", where=where, fix=KEY_FIX)
    if len(key) < MIN_KEY_CHARS:
        raise UsageError(
            f"the signing key has {len(key)} characters, fewer than {MIN_KEY_CHARS} (a short key is found "
            "offline from any signed note)",
            where=where,
            fix=KEY_FIX,
        )
    return key


def signing_key() -> str | None:
    """The configured signing key, or None. UsageError (exit 2) for an unreadable key file, and for a
    key that is empty or too short (``_checked``) wherever it comes from."""
    value = os.environ.get(SIGNING_KEY_ENV) or None
    path = os.environ.get(SIGNING_KEY_FILE_ENV) or None
    if (value, path) in _cache:
        return _cache[(value, path)]
    if value and path:
        raise UsageError(
            f"both {SIGNING_KEY_ENV} and {SIGNING_KEY_FILE_ENV} are set",
            fix="set only one of them (the file variant keeps the key out of the environment)",
        )
    key = _checked(value, SIGNING_KEY_ENV) if value else None
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"cannot read the signing key: {getattr(exc, 'strerror', None) or exc}",
                where=path,
                fix=f"point {SIGNING_KEY_FILE_ENV} at a readable file holding the key",
            ) from None
        key = _checked(text, path)
    register_secret(key)
    _cache[(value, path)] = key
    return key
