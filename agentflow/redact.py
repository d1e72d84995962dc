"""Keep secrets out of the ledger, transcripts and logs.

``redact`` replaces API keys and tokens by ``[REDACTED]``: values of secret-looking environment
variables present in this process, plus well-known token shapes. The ledger applies it to every
event and transcript it stores, so no caller can forget.
"""

from __future__ import annotations

import os
import re

SECRET_ENV_NAMES = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
ALWAYS_SECRET = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTFLOW_SIGNING_KEY")
_TOKEN_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"  # Anthropic keys
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|xox[baprs]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|(?<=Bearer )[A-Za-z0-9._\-]{12,}"
)
MASK = "[REDACTED]"


def is_secret_name(name: str) -> bool:
    return name in ALWAYS_SECRET or bool(SECRET_ENV_NAMES.search(name))


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def redact(text: str, env: dict[str, str] | None = None) -> str:
    for value in secret_values(env):
        if value in text:
            text = text.replace(value, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def scrubbed_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without secrets, for child processes the agents run."""
    env = dict(os.environ if env is None else env)
    return {k: v for k, v in env.items() if not is_secret_name(k)}
