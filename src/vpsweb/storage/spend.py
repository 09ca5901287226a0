"""A job's spend while it runs: the cost of each step output, added once when the
output is stored (``StepLog.finish``), read with the status before every LLM call of a
job with a ``max_cost`` (``JobStore.status_and_spent``, ``ProgressLog.straggler_check``).
"""

from __future__ import annotations

import json

SPENT_FIELD = "spent"  # the job hash's running total of its stored steps' cost


def billed_cost(payload: str) -> float:
    """The cost a step output's metrics record (0 for an output without them): what
    ``StepLog.finish`` adds to the job's spend, in the job's one currency (a job with
    a max_cost is admitted only when its models share one)."""
    try:
        usage = (json.loads(payload).get("metrics") or {}).get("usage") or {}
        return max(0.0, float(usage.get("cost") or 0.0))
    except (ValueError, AttributeError, TypeError):
        return 0.0
