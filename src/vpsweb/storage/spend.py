"""A job's spend while it runs: the cost of each step output, added once when the
output is stored (``StepLog.finish``), read with the status before every LLM call of a
job with a ``max_cost`` (``JobStore.status_and_spent``, ``ProgressLog.straggler_check``).

A batch's job also adds the output's cost, calls and tokens to its batch's counters
in the same write, so that the batch's budget check and its progress read counters
(one read whatever the batch's size) instead of adding up its jobs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SPENT_FIELD = "spent"  # the job hash's running total of its stored steps' cost
# The batch hash's counters: its jobs' stored steps' cost (the budget's measure), the
# same per currency (COST_PREFIX + currency), and their calls and tokens.
BATCH_SPENT = "spent"
BATCH_CALLS = "calls"
BATCH_TOKENS = "tokens"
COST_PREFIX = "cost:"


@dataclass(frozen=True)
class Billed:
    """What a step output's metrics say it was billed (zeros for one without them)."""

    cost: float = 0.0
    currency: str = ""
    calls: int = 0
    tokens: int = 0


def billed(payload: str) -> Billed:
    """A step output's cost (its currency), calls and tokens from its metrics."""
    try:
        metrics = json.loads(payload).get("metrics") or {}
        usage = metrics.get("usage") or {}
        tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        return Billed(
            cost=max(0.0, float(usage.get("cost") or 0.0)),
            currency=str(usage.get("currency") or ""),
            calls=max(0, int(metrics.get("attempts") or 0)),
            tokens=max(0, tokens),
        )
    except (ValueError, AttributeError, TypeError):
        return Billed()


def billed_cost(payload: str) -> float:
    """The cost a step output's metrics record (0 for an output without them): what
    ``StepLog.finish`` adds to the job's spend, in the job's one currency (a job with
    a max_cost is admitted only when its models share one)."""
    return billed(payload).cost
