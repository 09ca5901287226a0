"""Provider-style rate limits for the simulator: requests and tokens per minute, and
concurrent requests, as OpenAI-compatible providers enforce them.

The random ``--rate-429`` fault tests that a client survives a 429; these limits test
that a client *paces itself*: a provider that allows 240 requests a minute "quantised
per second with a burst of 8" refuses the ninth request of a burst however healthy it
is, and tells when to come back (``retry-after-ms``) and how much is left
(``x-ratelimit-*``). The arithmetic is kept pure (the clock is a parameter), so that
unit tests step time by hand instead of sleeping.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from vpsweb.simulator.protocol import error_response

Clock = Callable[[], float]
Kind = Literal["requests", "tokens", "concurrency"]
KINDS: tuple[Kind, ...] = ("requests", "tokens", "concurrency")
# A concurrency refusal has no bucket to wait for: a slot frees when some answer is
# sent, which the server cannot foresee; a short pause is what providers suggest.
CONCURRENCY_RETRY_MS = 250.0


class TokenBucket:
    """A bucket refilled continuously at ``rate`` per second up to ``capacity``.

    The level may go below zero (a request that used more completion tokens than it
    was charged for): the debt is then repaid by the refill before anything fits.
    """

    def __init__(self, rate: float, capacity: float, now: Clock) -> None:
        self.rate = rate
        self.capacity = capacity
        self.now = now
        self.level = capacity  # a fresh provider account starts with a full bucket
        self.stamp = now()

    def refill(self) -> float:
        t = self.now()
        self.level = min(self.capacity, self.level + max(0.0, t - self.stamp) * self.rate)
        self.stamp = t
        return self.level

    def wait_s(self, amount: float) -> float:
        """0 if ``amount`` fits now, else the seconds until the refill makes it fit."""
        level = self.refill()
        return 0.0 if amount <= level else (amount - level) / self.rate

    def take(self, amount: float) -> None:
        self.refill()
        self.level -= amount

    def give(self, amount: float) -> None:
        """Back into the bucket (a refund of unused max_tokens), never above capacity."""
        self.refill()
        self.level = min(self.capacity, self.level + amount)

    def remaining(self) -> int:
        return max(0, math.floor(self.refill() + 1e-9))

    def reset_s(self) -> float:
        """Seconds until the bucket is full again (what x-ratelimit-reset-* report)."""
        return max(0.0, self.capacity - self.refill()) / self.rate


@dataclass
class Admission:
    """An admitted request: what it was charged, so that its answer can settle up."""

    completion_charged: int  # the max_tokens taken from the tokens bucket
    headers: dict[str, str]
    completion_used: int = 0  # set by the server from the answer's usage
    released: bool = False


@dataclass(frozen=True)
class Refusal:
    kind: Kind
    retry_after_ms: float
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class ProviderLimits:
    """Admission control over the three limits; a limit of 0 is off.

    A request is charged its prompt tokens plus its max_tokens on admission, and the
    part of max_tokens it did not use is refunded when it answers, as OpenAI does; the
    tokens bucket holds at least the largest request seen, so that no request is
    refused for ever.
    """

    def __init__(
        self,
        *,
        rpm: int = 0,
        tpm: int = 0,
        max_concurrent: int = 0,
        burst: int = 8,
        now: Clock = time.monotonic,
    ) -> None:
        self.rpm, self.tpm, self.max_concurrent = rpm, tpm, max_concurrent
        self.requests = TokenBucket(rpm / 60, burst, now) if rpm else None
        self.tokens = TokenBucket(tpm / 60, tpm / 60, now) if tpm else None
        self.in_flight = self.accepted = self.peak = 0
        self.throttled_by: Counter[str] = Counter(dict.fromkeys(KINDS, 0))

    def reset_counts(self) -> None:
        """Zero the counters (the simulator's /stats/reset); the buckets and the
        requests in flight are live state and stay."""
        self.accepted = 0
        self.throttled_by = Counter(dict.fromkeys(KINDS, 0))
        self.peak = self.in_flight

    def counts(self) -> dict[str, Any]:
        """What /stats reports of the limits."""
        return {
            "accepted": self.accepted,
            "throttled": sum(self.throttled_by.values()),
            "throttled_by": dict(self.throttled_by),
            "max_in_flight_seen": self.peak,
        }

    def admit(self, prompt_tokens: int, max_tokens: int | None) -> Admission | Refusal:
        """Admit and charge the request, or refuse it without charging anything."""
        completion = max_tokens or 0
        cost = prompt_tokens + completion
        if self.tokens is not None:
            self.tokens.capacity = max(self.tokens.capacity, cost)
        refusal = self._refusal(cost)
        if refusal is not None:
            self.throttled_by[refusal.kind] += 1
            return refusal
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(cost)
        self.in_flight += 1
        self.accepted += 1
        self.peak = max(self.peak, self.in_flight)
        return Admission(completion, self.headers())

    def release(self, admission: Admission) -> None:
        """The answer went out (or the client left): free the slot, settle the tokens.
        Idempotent, so that a ``finally`` may call it whatever happened before."""
        if admission.released:
            return
        admission.released = True
        self.in_flight -= 1
        if self.tokens is not None:
            unused = admission.completion_charged - admission.completion_used
            if unused >= 0:
                self.tokens.give(unused)
            else:
                self.tokens.take(-unused)

    def _refusal(self, cost: int) -> Refusal | None:
        if self.requests is not None and (wait := self.requests.wait_s(1)):
            limit = f"requests per min (RPM): Limit {self.rpm}, Requested 1"
            return self._refuse("requests", wait * 1000, limit)
        if self.tokens is not None and (wait := self.tokens.wait_s(cost)):
            limit = (
                f"tokens per min (TPM): Limit {self.tpm}, "
                f"Remaining {self.tokens.remaining()}, Requested {cost}"
            )
            return self._refuse("tokens", wait * 1000, limit)
        if self.max_concurrent and self.in_flight >= self.max_concurrent:
            limit = f"concurrent requests: Limit {self.max_concurrent}"
            return self._refuse("concurrency", CONCURRENCY_RETRY_MS, limit)
        return None

    def _refuse(self, kind: Kind, after_ms: float, limit: str) -> Refusal:
        message = (
            f"Rate limit reached for {kind} (simulated) on {limit}. "
            f"Please try again in {duration(after_ms / 1000)}."
        )
        headers = {
            # Both forms: the openai SDK prefers retry-after-ms, other clients read seconds.
            "retry-after": str(max(1, math.ceil(after_ms / 1000))),
            "retry-after-ms": str(math.ceil(after_ms)),
            **self.headers(),
        }
        return Refusal(kind, after_ms, message, headers)

    def headers(self) -> dict[str, str]:
        """The x-ratelimit-* headers of the limits that are on, as of now."""
        out: dict[str, str] = {}
        for name, limit, bucket in (
            ("requests", self.rpm, self.requests),
            ("tokens", self.tpm, self.tokens),
        ):
            if bucket is not None:
                out[f"x-ratelimit-limit-{name}"] = str(limit)
                out[f"x-ratelimit-remaining-{name}"] = str(bucket.remaining())
                out[f"x-ratelimit-reset-{name}"] = duration(bucket.reset_s())
        return out


def duration(seconds: float) -> str:
    """A span as providers write it: "250ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{round(rest, 3):g}s"
    return f"{int(minutes)}m{rest_text}" if minutes else rest_text


def max_tokens_of(body: dict[str, Any]) -> int | None:
    """The completion budget a request asks for (OpenAI's newer name first); None if it
    names none or something that is not a count, which is then charged as used."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def refusal_response(refusal: Refusal) -> web.Response:
    """A 429 as OpenAI sends it: type names the limit, code rate_limit_exceeded."""
    resp = error_response(429, refusal.message, refusal.kind, "rate_limit_exceeded")
    resp.headers.update(refusal.headers)
    return resp
