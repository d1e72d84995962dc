"""The ``--llm`` Evaluator session (not available yet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentflow.errors import UsageError


def check_available() -> None:
    raise UsageError("--llm is not available yet", fix="run without --llm; the deterministic rules still apply")


def run_llm_review(result: Any, root: Path, config: Any, *, record: bool) -> None:  # pragma: no cover
    check_available()
