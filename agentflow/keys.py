"""The signing key: read once per process, in one place (#12 item 8, #13 item 5).

``AGENTFLOW_SIGNING_KEY`` holds the key, or ``AGENTFLOW_SIGNING_KEY_FILE`` names a file holding it
(surrounding whitespace ignored); setting both is an input error. The key is read the first time
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
_cache: dict[tuple[str | None, str | None], str | None] = {}


def signing_key() -> str | None:
    """The configured signing key, or None. UsageError (exit 2) for an unreadable or empty key file."""
    value = os.environ.get(SIGNING_KEY_ENV) or None
    path = os.environ.get(SIGNING_KEY_FILE_ENV) or None
    if (value, path) in _cache:
        return _cache[(value, path)]
    if value and path:
        raise UsageError(
            f"both {SIGNING_KEY_ENV} and {SIGNING_KEY_FILE_ENV} are set",
            fix="set only one of them (the file variant keeps the key out of the environment)",
        )
    key = value
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"cannot read the signing key: {getattr(exc, 'strerror', None) or exc}",
                where=path,
                fix=f"point {SIGNING_KEY_FILE_ENV} at a readable file holding the key",
            ) from None
        if not key:
            raise UsageError("the signing key file is empty", where=path, fix="write the key into it")
    register_secret(key)
    _cache[(value, path)] = key
    return key
