"""Signals: what the steps in flight must hear about promptly, announced to every worker.

A step's LLM call takes seconds; asking the store every half second whether its
job ended cost ~3 commands per call-second. Instead the store announces, once, the
two things a call in flight must act on (Redis: PUBLISH on one channel): a job
ended (cancelled, failed, stalled, succeeded), and a candidate of a job under a
straggler quorum succeeded (the quorum's deadline may now be set). Each worker
process subscribes once for all its steps (``orchestrator.watch``).

Pub/sub is best effort: a message sent while a subscriber was disconnected (a
Redis restart, a Sentinel failover) is lost without a word. So the worker's keeper
reads the job's status and straggler deadline with every lease renewal
(``Leases.keep``, storage.leases: one round trip per step every few seconds): a missed signal
delays a stop by at most one keeper round, it never loses it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import StrEnum


class SignalKind(StrEnum):
    ENDED = "ended"  # the job ended: its calls in flight are abandoned
    CANDIDATE = "candidate"  # a candidate under a straggler quorum succeeded


@dataclass(frozen=True)
class Signal:
    kind: SignalKind
    job_id: str

    def encode(self) -> str:
        return f"{self.kind.value}:{self.job_id}"

    @classmethod
    def decode(cls, text: str) -> Signal | None:
        """The signal a message carries; None for one this version does not know."""
        kind, _, job_id = text.partition(":")
        try:
            return cls(SignalKind(kind), job_id) if job_id else None
        except ValueError:
            return None


class SignalFeed(abc.ABC):
    """One subscription, read by one thread."""

    @abc.abstractmethod
    def next(self, timeout_s: float) -> list[Signal]:
        """The signals received within ``timeout_s`` (empty when none came). Raises
        StoreUnavailable when the subscription is lost; the next call subscribes again
        (signals sent meanwhile are lost: the keeper's round covers them)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Signals(abc.ABC):
    @abc.abstractmethod
    def announce(self, signal: Signal) -> None:
        """Tell every subscriber now (best effort: nobody listening is not an error)."""

    @abc.abstractmethod
    def subscribe(self) -> SignalFeed: ...
