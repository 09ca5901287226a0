"""What a batch would cost: the sum of its members' estimates, and its budget's refusal.

Pure, as ``vpsweb.domain.estimate`` (whose per-job figures it adds up); re-exported by
``vpsweb.domain.batch``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from vpsweb.domain.estimate import Figures, JobEstimate, money


class BatchEstimate(BaseModel):
    """The sum of the members' estimates (every entry counted: reuse can only lower
    what a submission pays)."""

    model_config = ConfigDict(extra="forbid")

    count: int
    budget: float | None = None
    expected: Figures
    worst: Figures
    currencies: list[str]
    jobs: list[JobEstimate]

    def text(self) -> str:
        e, w = self.expected, self.worst
        lines = [
            f"estimate: {self.count} poem(s)",
            f"expected: {e.calls} calls, ~{e.tokens:,} tokens, {money(e.cost)}",
            f"worst case: {w.calls} calls, ~{w.tokens:,} tokens, {money(w.cost)}",
        ]
        if self.budget is not None:
            lines.append(f"budget: {self.budget:g} {'/'.join(self.currencies)}")
        return "\n".join(lines)


def estimate_of(jobs: Sequence[JobEstimate], budget: float | None = None) -> BatchEstimate:
    expected, worst = Figures(), Figures()
    currencies: set[str] = set()
    for job in jobs:
        expected, worst = expected.plus(job.expected), worst.plus(job.worst)
        currencies.update(job.currencies)
    return BatchEstimate(
        count=len(jobs),
        budget=budget,
        expected=expected,
        worst=worst,
        currencies=sorted(currencies),
        jobs=list(jobs),
    )


def budget_problems(estimate: BatchEstimate, spent: float = 0.0) -> list[str]:
    """Why the batch's ``budget`` refuses it (empty: it may run): the expected cost of
    its new jobs (plus what the batch ``spent`` already, on a resume) is above it, or
    its models are priced in several currencies, which one amount cannot cap."""
    limit = estimate.budget
    if limit is None:
        return []
    if len(estimate.currencies) > 1:
        return [
            f"budget: this batch's models are priced in {' and '.join(estimate.currencies)}; "
            "one budget cannot cap spending in several currencies: choose models priced in "
            "one currency or submit without a budget"
        ]
    cost = sum(estimate.expected.cost.values())
    if math.isclose(cost + spent, limit) or cost + spent <= limit:
        return []
    currency = estimate.currencies[0] if estimate.currencies else ""
    e = estimate.expected
    already = f" on top of the {spent:.4g} {currency} it spent" if spent else ""
    return [
        f"budget: {limit:g} {currency} is below this batch's estimated cost {cost:.4g} "
        f"{currency}{already} ({estimate.count} new job(s), {e.calls} calls, "
        f"~{e.tokens:,} tokens); raise the budget or translate fewer poems"
    ]
