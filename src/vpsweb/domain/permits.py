"""A provider's quota as data: limits, buckets, asks, grants and settlements.

Pure data for the quota seam (``vpsweb.storage.quotas``) and the worker's gate
(``vpsweb.llm.quota_gate``), which must not import each other's packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    """A bucket's declared quota; 0 is "not declared"."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    max_concurrent: int = 0


@dataclass(frozen=True)
class Bucket:
    """Where a call's quota is drawn: a provider ("deepseek"), or a model with limits of
    its own ("deepseek/deepseek-chat"), always within its provider's."""

    name: str
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class QuotaAsk:
    """One call asking for a permit. ``ticket`` keeps its place in the queue across
    polls and across a 429 (a throttled call does not go to the back)."""

    provider: Bucket
    model: Bucket | None
    ticket: str
    flow: str  # the job's batch, or the job: batches share capacity round-robin
    batch: bool  # False: interactive, served before every batch call
    tokens: int  # reserved: the prompt's estimate plus max_tokens
    hold_s: float  # a permit never settled (its worker died) lapses after this
    resume: bool = False  # asked again after a 429: at the front of its class


@dataclass(frozen=True)
class Grant:
    """The answer to an ask: a permit, or how many calls are ahead and when to ask again.
    With a permit, ``ahead`` counts the calls still waiting (the provider is contended:
    a returned permit should go back at once)."""

    granted: bool
    permit: str = ""
    ahead: int = 0
    retry_in_s: float = 0.0
    reason: str = ""  # why not: "concurrency", "requests", "tokens", "paused", "queue"
    room: int = 0  # with a permit: how many more calls could go now (near 0: contended)


@dataclass(frozen=True)
class Settlement:
    """How a permitted call ended, for the allowance and the counters."""

    ask: QuotaAsk
    permit: str
    used_tokens: int | None = None  # None: unknown (no answer): the reservation stands
    throttled: bool = False  # the provider answered 429
    retry_after_s: float | None = None  # its retry-after, or x-ratelimit reset at 0 left
    waited_s: float = 0.0  # how long the call waited for its permit


@dataclass(frozen=True)
class QuotaState:
    """A bucket as `vpsweb stats` and /metrics show it."""

    bucket: str
    calls: int = 0
    waits: int = 0  # calls that waited for a permit
    wait_s: float = 0.0
    throttled: int = 0  # 429s the provider answered
    allowance: float | None = None  # the adaptive concurrency allowance; None: unlimited
    in_flight: int = 0
    queued: int = 0
    settled_alone: int = 0  # round trips that only returned permits (none rode along)

    @classmethod
    def of(
        cls, bucket: str, counters: Mapping[str, Any], *, in_flight: int, queued: int
    ) -> QuotaState:
        """From a bucket's counters as a store keeps them (numbers, or Redis's text)."""
        allowance = counters.get("allowance")
        return cls(
            bucket=bucket,
            calls=int(counters.get("calls", 0)),
            waits=int(counters.get("waits", 0)),
            wait_s=float(counters.get("wait_s", 0.0)),
            throttled=int(counters.get("throttled", 0)),
            allowance=float(allowance) if allowance else None,
            in_flight=in_flight,
            queued=queued,
            settled_alone=int(counters.get("settled_alone", 0)),
        )
