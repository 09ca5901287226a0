"""The quota seam: one allowance per provider (and per model that declares its own),
shared by every worker process on every host.

A call takes a permit before it is sent and settles it when it ends. Taking one is
atomic in the store (one script), so that two hosts never both take the last slot;
a call without capacity keeps its place in a queue ordered by priority, then by a
fair-share tag (round-robin between batches), then by arrival. Settling returns the
concurrency slot, corrects the token reservation by the usage reported and, for a
429, shrinks the adaptive allowance that every worker obeys.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from vpsweb.domain.permits import Grant, QuotaAsk, QuotaState, Settlement


class Quotas(abc.ABC):
    """The cluster-wide allowances (see the module docstring)."""

    @abc.abstractmethod
    def acquire(self, ask: QuotaAsk, settle: Sequence[Settlement] = ()) -> Grant:
        """One round trip: settle earlier permits, then try to take one for ``ask``."""

    @abc.abstractmethod
    def settle(self, done: Sequence[Settlement], *, alone: bool = True) -> None:
        """Return permits (one round trip for all of them). ``alone``: that round trip
        is theirs only (counted in ``QuotaState.settled_alone``: the limiter's own
        cost), not a step's that they ride with."""

    @abc.abstractmethod
    def nap(self, ask: QuotaAsk, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early when a permit is returned."""

    @abc.abstractmethod
    def withdraw(self, ask: QuotaAsk) -> None:
        """Leave the queue (the call was cancelled or gave up waiting)."""

    @abc.abstractmethod
    def state(self, buckets: Sequence[str]) -> list[QuotaState]: ...
