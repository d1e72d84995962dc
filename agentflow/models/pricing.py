"""Prices per model, in USD per million tokens: the one place cost is computed from.

Prompt-cache writes cost 1.25x the input price and cache reads 0.1x (5-minute ephemeral cache).
A model not in the table is priced with ``CONSERVATIVE`` (the most expensive tier) so budgets
err on the safe side, and ``price_for`` says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agentflow.events import Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    input: float  # USD per million uncached input tokens
    output: float
    cache_write: float
    cache_read: float

    @classmethod
    def standard(cls, input: float, output: float) -> Price:
        return cls(input=input, output=output, cache_write=input * 1.25, cache_read=input * 0.1)

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_write * self.cache_write
            + usage.cache_read * self.cache_read
        ) / 1_000_000


# Longest matching prefix wins, so dated snapshots ("claude-sonnet-4-5-20250929") find their family.
PRICES: dict[str, Price] = {
    "claude-sonnet-5-5": Price.standard(3.0, 15.0),
    "claude-haiku-5-5": Price.standard(1.0, 5.0),
    "claude-opus-4-5": Price.standard(5.0, 25.0),
    "claude-opus-4": Price.standard(15.0, 75.0),
    "claude-sonnet-4": Price.standard(3.0, 15.0),
    "claude-haiku-4-5": Price.standard(1.0, 5.0),
    "claude-3-7-sonnet": Price.standard(3.0, 15.0),
    "claude-3-5-haiku": Price.standard(0.8, 4.0),
    "scripted": Price(0.0, 0.0, 0.0, 0.0),
}
CONSERVATIVE = Price.standard(15.0, 75.0)
_warned: set[str] = set()


def price_for(model: str) -> tuple[Price, bool]:
    """(price, known): unknown models get ``CONSERVATIVE`` and a one-time warning in the log."""
    matches = [prefix for prefix in PRICES if model == prefix or model.startswith(prefix + "-")]
    if matches:
        return PRICES[max(matches, key=len)], True
    if model not in _warned:
        _warned.add(model)
        log.warning(
            "no price known for model %r: costing it at $%g/$%g per million input/output tokens",
            model,
            CONSERVATIVE.input,
            CONSERVATIVE.output,
        )
    return CONSERVATIVE, False


def cost_usd(model: str, usage: Usage) -> float:
    return price_for(model)[0].cost(usage)


def estimate_tokens(chars: int) -> int:
    """A conservative token count for ``chars`` characters of prompt (~3 characters per token)."""
    return chars // 3 + 1


def estimate_call_cost(model: str, prompt_chars: int, max_output_tokens: int) -> float:
    """An upper-bound-ish cost of one call before it is made: the whole prompt priced as a cache
    write (the dearest input) plus the full output allowance."""
    price, _ = price_for(model)
    tokens = estimate_tokens(prompt_chars)
    return (tokens * max(price.input, price.cache_write) + max_output_tokens * price.output) / 1_000_000
