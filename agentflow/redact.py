"""Keep secrets out of the ledger, transcripts, notes, reports and logs.

``redact`` replaces API keys and tokens by ``[REDACTED]``: values of secret-looking environment
variables present in this process, secrets registered by agentflow itself (the signing key, which
may come from a file: ``register_secret``), plus well-known token shapes. Each known value is also
caught in its usual encodings: hex (either case) and base64 (standard and URL-safe, at each of the
three byte alignments it can have inside a longer encoded text, and across the line breaks
``base64`` inserts every 76 characters). The ledger applies it to every event and transcript it
stores, and every report writer to what it writes, so no caller can forget.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

SECRET_ENV_NAMES = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
ALWAYS_SECRET = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTFLOW_SIGNING_KEY")
_TOKEN_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"  # Anthropic keys
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|xox[baprs]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|(?<=Bearer )[A-Za-z0-9._\-]{12,}"
    r"|(?i:(?<=basic )[A-Za-z0-9+/]{16,}={0,2})"  # HTTP Basic credentials (http.extraheader)
    r"|glpat-[A-Za-z0-9_\-]{20,}"  # GitLab personal access tokens
    r"|(?<=://)[^/\s:@]+:[^/\s@]{3,}(?=@)"  # the user:password of a URL
)
# Every text a token shape matches holds one of these, lower-cased (a superset: "GHP_" is no GitHub
# token, but finding it costs nothing). The shapes' lookbehinds keep re from skipping ahead to a
# literal: it tries all nine at every character (about 90 us a KB, the biggest share of a ledger
# append's CPU); most texts (an event, a transcript message) hold none of these and skip it.
# Only for ASCII text, where lower-casing is exactly what the ignore-case shape compares.
_SHAPE_MARKERS = (
    "sk-ant-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "akia", "xox", "bearer ", "basic ", "glpat-", "://",
)  # fmt: skip
MASK = "[REDACTED]"
MIN_SECRET_LEN = 8
_registered: set[str] = set()


# names the pattern matches that hold no secret: git identities ("AUTH" in GIT_AUTHOR_*)
NOT_SECRET = frozenset({"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE"})


def is_secret_name(name: str) -> bool:
    return name in ALWAYS_SECRET or (name not in NOT_SECRET and bool(SECRET_ENV_NAMES.search(name)))


def register_secret(value: str | None) -> None:
    """Treat ``value`` as a secret from now on in this process (a key read from a file, say)."""
    if value and len(value) >= MIN_SECRET_LEN and value not in _registered:
        _registered.add(value)
        _cache.clear()


# this process's secret values, computed once and again only when the environment changed (#19 item 4)
_cache: dict[str, Any] = {}


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """The secret values to mask, longest first: secret-named variables of ``env`` (default: this
    process's environment) and registered secrets. For the process environment the result is kept
    until the environment changes (a snapshot compare costs far less than scanning every name)."""
    if env is not None:
        return _secret_values(env)
    data = getattr(os.environ, "_data", None)  # os.environ's own mapping: equality is a cheap compare
    if data is None:
        return _secret_values(os.environ)
    if _cache.get("env") != data:
        _cache["values"] = _secret_values(os.environ)
        _cache["env"] = dict(data)
    return _cache["values"]


def _secret_values(env: Any) -> list[str]:
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN} | _registered
    return sorted(values, key=len, reverse=True)


def encoded_forms(value: str) -> list[str]:
    """How ``value`` looks hex- or base64-encoded, alone or inside a longer encoded text.

    For base64 the characters that depend on neighbouring bytes are dropped, so the forms match
    wherever the value sits; a value of 8 bytes or more still leaves at least 9 characters.
    """
    import base64  # here: every command imports this module (git_env), few ever encode a secret

    raw = value.encode()
    forms = {raw.hex(), raw.hex().upper()}
    for pad in range(3):
        start, end = -(-8 * pad // 6), 8 * (pad + len(raw)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            form = encode(b"\0" * pad + raw).decode()[start:end]
            if len(form) >= MIN_SECRET_LEN:
                forms.add(form)
    return sorted(forms - {value}, key=len, reverse=True)


@lru_cache(maxsize=32)
def _encoded(values: tuple[str, ...]) -> tuple[str, ...]:
    """The encoded forms of ``values``."""
    return tuple(sorted({form for value in values for form in encoded_forms(value)}, key=len, reverse=True))


@lru_cache(maxsize=32)
def _wrapped(forms: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern matching ``forms`` split by line breaks anywhere: compiled only when a text holds
    wrapped base64 (its compile, a character class between every two characters of every form, is
    most of a process's first redaction, which every build paid before its first model call)."""
    return re.compile("|".join("(?:\r?\n)?".join(re.escape(c) for c in form) for form in forms))


_WRAPPED_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}\r?\n[A-Za-z0-9+/_-]")


def redact(text: str, env: dict[str, str] | None = None) -> str:
    values = secret_values(env)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    if values:
        forms = _encoded(tuple(values))
        for form in forms:  # a substring test is fast; the line-break-tolerant pattern is not
            if form in text:
                text = text.replace(form, MASK)
        if forms and _WRAPPED_BASE64.search(text):  # base64 tools wrap at 76 columns
            text = _wrapped(forms).sub(MASK, text)
    if text.isascii():  # else the slow way: re's ignore-case matches "ſ" and "İ" to "s" and "i"
        lowered = text.lower()
        if not any(marker in lowered for marker in _SHAPE_MARKERS):
            return text
    return _TOKEN_SHAPES.sub(MASK, text)


def redact_data(data: Any, env: dict[str, str] | None = None) -> Any:
    """``data`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(data, str):
        return redact(data, env)
    if isinstance(data, dict):
        return {key: redact_data(value, env) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(value, env) for value in data]
    return data


def scrubbed_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without secrets, for child processes the agents run."""
    env = dict(os.environ if env is None else env)
    return {k: v for k, v in env.items() if not is_secret_name(k)}
