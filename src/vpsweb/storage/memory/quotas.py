"""The cluster-wide quota in memory: the rules of quota_acquire.lua and
quota_settle.lua beside storage.redis, each operation one critical section.

Time is the keyspace's clock (a ManualClock in tests), so refills, lapses and pauses
follow it. A waiting call's ``nap`` blocks on a condition that ``settle`` notifies,
for at most its seconds of real time; with a ManualClock it returns at once (time
does not pass by itself there: the caller moves it).

Two rules differ from the scripts on purpose (the contract tests mark the Redis side
until they are fixed): equal scores in the queue go by arrival (a ZSET ranks them by
ticket name), and a refusal says "requests" only when the request bucket binds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from vpsweb.domain.permits import Bucket, Grant, Limits, QuotaAsk, QuotaState, Settlement
from vpsweb.storage.memory.state import Keyspace, ManualClock, Name
from vpsweb.storage.quotas import Quotas

STALE_S = 5.0  # a waiting call that has not asked for this long has gone (worker died)
PACE, BURST_S = 0.95, 0.5  # requests at 95 % of the rate, bursts of 0.5 s (acquire.lua)
CUT, INCREASE, INITIAL, CEILING = 0.85, 0.5, 16, 512  # the allowance (quota_settle.lua)
SOFT_CUT = 0.95  # a 429 that did not say a window is spent (a concurrency limit, say)
RESERVE = 4.0  # requests above the burst (a second's worth at most) for interactive calls
ACTIVE_S = 10.0  # a batch flow that asked within this is active (quota_acquire.lua)
CLASS = 1e12  # a batch call's score is past every interactive call's
WAKE_TTL_S = 5.0  # an unheard wake-up lapses (the Redis list's PEXPIRE)
FLOWS_TTL_S = 86400
POLL_S, NO_LIMIT = 0.5, 10**9


def _hash(bucket: str) -> Name:
    """A bucket's levels, allowance, pause and counters (Redis: ``keys.quota``)."""
    return ("quota", bucket)


def _in_flight(bucket: str) -> Name:
    return ("quota-inflight", bucket)


def _queue(provider: str) -> Name:
    """Ticket -> (score, arrival): class and fair-share tag, then arrival."""
    return ("quota-queue", provider)


def _seen(provider: str) -> Name:
    return ("quota-seen", provider)


def _flows(provider: str) -> Name:
    return ("quota-flows", provider)


def _wake(provider: str, ticket: str) -> Name:
    return ("quota-wake", provider, ticket)


def _arrivals(provider: str) -> Name:
    return ("quota-arrivals", provider)


def _batches(provider: str) -> Name:
    """Batch flows -> when they last asked."""
    return ("quota-batches", provider)


def _turn_beside_another_batch(space: Keyspace, ask: QuotaAsk) -> float:
    """Beside another batch, a batch's turn is as far off as its tag is ahead of the
    virtual time, at least: its parked steps come back then, not all at the queue's
    wait (they would churn through the workers' threads and delay the other batch's
    steps). Alone, its own re-asks inflate its tag: the queue's wait. quota_acquire.lua's
    rule."""
    p, rpm = ask.provider.name, ask.provider.limits.requests_per_minute
    now = space.clock()
    active = space.get(_batches(p)) or {}
    others = [f for f, at in active.items() if f != ask.flow and at >= now - ACTIVE_S]
    if not ask.batch or not rpm or not others:
        return 0.0
    queue: dict[str, tuple[float, int]] = space.get(_queue(p)) or {}
    v = (space.get(_flows(p)) or {}).get("_v", 0.0)
    return (queue[ask.ticket][0] - CLASS - v) / (rpm / 60 * PACE)


def _ranked(queue: dict[str, tuple[float, int]]) -> list[str]:
    return sorted(queue, key=lambda t: queue[t])


class MemoryQuotas(Quotas):
    def __init__(self, space: Keyspace) -> None:
        self.space = space

    @property
    def _woken(self) -> threading.Condition:
        """Notified by every settlement (shared by every MemoryQuotas on the keyspace)."""
        cond: threading.Condition = self.space.setdefault(
            ("quota-woken",), lambda: threading.Condition(self.space.lock)
        )
        return cond

    # --- acquire -----------------------------------------------------------------------

    def acquire(self, ask: QuotaAsk, settle: Sequence[Settlement] = ()) -> Grant:
        with self.space.lock:
            for done in settle:
                self._settle_one(done)
            return self._acquire(ask)

    def _acquire(self, ask: QuotaAsk) -> Grant:
        space, now, p = self.space, self.space.clock(), ask.provider.name
        queue: dict[str, tuple[float, int]] = space.setdefault(_queue(p), dict)
        seen: dict[str, float] = space.setdefault(_seen(p), dict)

        # Waiters that stopped asking (their worker died) leave the queue.
        for gone in [t for t, at in seen.items() if at <= now - STALE_S]:
            queue.pop(gone, None)
            del seen[gone]

        # Place: priority class, then the flow's fair-share tag, then arrival.
        if ask.ticket not in queue:
            flows: dict[str, float] = space.setdefault(_flows(p), dict)
            v = flows.get("_v", 0.0)
            if ask.resume:
                tag = v
            else:
                tag = max(v, flows.get(ask.flow, 0.0)) + 1
                flows[ask.flow] = tag
            arrival = space.get(_arrivals(p)) or 0
            space.put(_arrivals(p), arrival + 1)
            queue[ask.ticket] = (int(ask.batch) * CLASS + tag, arrival)
            space.expire(_flows(p), FLOWS_TTL_S)
        seen[ask.ticket] = now
        if ask.batch:
            active: dict[str, float] = space.setdefault(_batches(p), dict)
            for flow in [f for f, at in active.items() if at < now - ACTIVE_S]:
                del active[flow]
            active[ask.flow] = now
        ahead = _ranked(queue).index(ask.ticket)

        room = _Room(space, now, ask, ahead)
        free, wait, why, levels = room.of(ask.provider, adaptive=True)
        model_levels: dict[str, float] = {}
        if ask.model is not None:
            mfree, mwait, mwhy, model_levels = room.of(ask.model, adaptive=False)
            if mfree < free:
                free, wait, why = mfree, mwait, mwhy
        paused = space.setdefault(_hash(p), dict).get("paused_until", 0.0)
        if paused > now:
            return Grant(granted=False, ahead=ahead, retry_in_s=paused - now, reason="paused")
        if ahead >= free:
            if why == "":
                why, wait = "queue", POLL_S
            wait = max(wait, _turn_beside_another_batch(space, ask))
            return Grant(granted=False, ahead=ahead, retry_in_s=wait, reason=why)

        score, _arrival = queue.pop(ask.ticket)
        del seen[ask.ticket]
        flows = space.setdefault(_flows(p), dict)
        tag = score - int(ask.batch) * CLASS
        if tag > flows.get("_v", 0.0):
            flows["_v"] = tag
        room.take(ask.provider, levels)
        if ask.model is not None:
            room.take(ask.model, model_levels)
        h = space.setdefault(_hash(p), dict)
        h["calls"] = h.get("calls", 0) + 1
        room_left = int(min(free - ahead - 1, 1e6))
        return Grant(granted=True, permit=ask.ticket, ahead=len(queue), room=room_left)

    # --- settle ------------------------------------------------------------------------

    def settle(self, done: Sequence[Settlement], *, alone: bool = True) -> None:
        if not done:
            return
        with self.space.lock:
            if alone:
                h = self.space.setdefault(_hash(done[0].ask.provider.name), dict)
                h["settled_alone"] = h.get("settled_alone", 0) + 1
            for d in done:
                self._settle_one(d)

    def _settle_one(self, done: Settlement) -> None:
        space, now = self.space, self.space.clock()
        ask, p = done.ask, done.ask.provider.name
        reserved = ask.tokens
        used = -1 if done.used_tokens is None else done.used_tokens
        h: dict[str, Any] = space.setdefault(_hash(p), dict)
        in_flight: dict[str, float] = space.setdefault(_in_flight(p), dict)

        def refund(hash_: dict[str, Any], tpm: int) -> None:
            if tpm <= 0 or used < 0:
                return
            rate = tpm / 60 * PACE
            level = hash_.get("tok", 0.0)
            since = hash_.get("tok_ts", now)
            level = level + max(0.0, now - since) * rate + max(0, reserved - used)
            hash_["tok"], hash_["tok_ts"] = min(level, max(rate, reserved)), now

        was_granted = in_flight.pop(done.permit, None)  # lapse time: granted + hold_s
        refund(h, ask.provider.limits.tokens_per_minute)
        if ask.model is not None:
            space.setdefault(_in_flight(ask.model.name), dict).pop(done.permit, None)
            refund(
                space.setdefault(_hash(ask.model.name), dict), ask.model.limits.tokens_per_minute
            )
        if done.waited_s > 0:
            h["waits"] = h.get("waits", 0) + 1
            h["wait_s"] = h.get("wait_s", 0.0) + done.waited_s

        _adapt(h, done, was_granted, len(in_flight), now)
        pause = -1.0 if done.retry_after_s is None else done.retry_after_s
        if pause > 0 and now + pause > h.get("paused_until", 0.0):
            h["paused_until"] = now + pause

        # Wake the queue's first two (two slots may free at once): they ask again at
        # once instead of at their next poll.
        for ticket in _ranked(space.get(_queue(p)) or {})[:2]:
            wake = _wake(p, ticket)
            space.setdefault(wake, list).append("1")
            space.expire(wake, WAKE_TTL_S)
        self._woken.notify_all()

    # --- waiting -----------------------------------------------------------------------

    def withdraw(self, ask: QuotaAsk) -> None:
        p = ask.provider.name
        with self.space.lock:
            (self.space.get(_queue(p)) or {}).pop(ask.ticket, None)
            (self.space.get(_seen(p)) or {}).pop(ask.ticket, None)
            self.space.delete(_wake(p, ask.ticket))

    def nap(self, ask: QuotaAsk, seconds: float) -> None:
        if seconds <= 0:
            return
        wake = _wake(ask.provider.name, ask.ticket)
        until = time.monotonic() + seconds
        with self.space.lock:
            woken = self._woken
            while True:
                pending: list[str] | None = self.space.get(wake)
                if pending:  # BLPOP: take one wake-up
                    pending.pop(0)
                    if not pending:
                        self.space.delete(wake)
                    return
                left = until - time.monotonic()
                if left <= 0 or isinstance(self.space.clock, ManualClock):
                    return
                woken.wait(left)

    # --- state -------------------------------------------------------------------------

    def state(self, buckets: Sequence[str]) -> list[QuotaState]:
        found = []
        with self.space.lock:
            for b in buckets:
                state = QuotaState.of(
                    b,
                    self.space.get(_hash(b)) or {},
                    in_flight=len(self.space.get(_in_flight(b)) or {}),
                    queued=len(self.space.get(_queue(b.partition("/")[0])) or {}),
                )
                found.append(state)
        return found


class _Room:
    """How many of the queue's first calls a bucket lets go now (quota_acquire.lua's
    ``room``), and taking a permit from it (``take``)."""

    def __init__(self, space: Keyspace, now: float, ask: QuotaAsk, ahead: int) -> None:
        self.space, self.now, self.ask, self.ahead = space, now, ask, ahead

    def _refill(self, h: dict[str, Any], name: str, rate: float, cap: float) -> float:
        level = h.get(name, cap)
        since = h.get(name + "_ts", self.now)
        return float(min(cap, level + max(0.0, self.now - since) * rate))

    def of(self, bucket: Bucket, *, adaptive: bool) -> tuple[float, float, str, dict[str, float]]:
        now, ahead, tokens = self.now, self.ahead, self.ask.tokens
        lim: Limits = bucket.limits
        h: dict[str, Any] = self.space.setdefault(_hash(bucket.name), dict)
        in_flight: dict[str, float] = self.space.setdefault(_in_flight(bucket.name), dict)
        for lapsed in [t for t, at in in_flight.items() if at <= now]:
            del in_flight[lapsed]
        free: float = NO_LIMIT
        wait, why = 0.0, ""
        conc = lim.max_concurrent
        if adaptive:  # the provider's allowance; unset: declared, or a slow start
            allowance = h.get("allowance", 0.0)
            if allowance <= 0:
                allowance = conc if conc > 0 else INITIAL
            if conc == 0 or allowance < conc:
                conc = max(1, math.floor(allowance))
        if conc > 0:
            free = conc - len(in_flight)
            if free <= ahead:
                wait, why = min(2.0, POLL_S + 0.1 * self.ahead), "concurrency"
        levels: dict[str, float] = {}
        if lim.requests_per_minute > 0:
            rate = lim.requests_per_minute / 60 * PACE
            burst = max(1.0, rate * BURST_S)
            reserve = min(RESERVE, rate) if burst >= 1.5 else 0.0  # interactive only
            level = levels["req"] = self._refill(h, "req", rate, burst + reserve)
            usable = level - (reserve if self.ask.batch else 0.0)
            free = min(free, math.floor(usable))
            if math.floor(usable) <= ahead:  # the request bucket binds (not just concurrency)
                wait, why = max(wait, (ahead + 1 - usable) / rate), "requests"
        if lim.tokens_per_minute > 0:
            rate = lim.tokens_per_minute / 60 * PACE
            level = levels["tok"] = self._refill(h, "tok", rate, max(rate, tokens))
            if level < tokens:
                free = 0
                wait, why = max(wait, (tokens - level) / rate), "tokens"
        return free, wait, why, levels

    def take(self, bucket: Bucket, levels: dict[str, float]) -> None:
        now, ask = self.now, self.ask
        self.space.setdefault(_in_flight(bucket.name), dict)[ask.ticket] = now + ask.hold_s
        h: dict[str, Any] = self.space.setdefault(_hash(bucket.name), dict)
        if bucket.limits.requests_per_minute > 0:
            h["req"], h["req_ts"] = levels["req"] - 1, now
        if bucket.limits.tokens_per_minute > 0:
            h["tok"], h["tok_ts"] = levels["tok"] - ask.tokens, now


def _adapt(
    h: dict[str, Any], done: Settlement, was_granted: float | None, serving: int, now: float
) -> None:
    """The allowance adapts as TCP's window does (quota_settle.lua): a slow start from
    INITIAL when nothing is declared, else from max_concurrent; one cut per round of
    calls to CUT (SOFT_CUT) times what was being served; additive increase."""
    ask, used = done.ask, -1 if done.used_tokens is None else done.used_tokens
    conc = ask.provider.limits.max_concurrent
    allowance = float(h.get("allowance", 0.0))
    slow = h.get("slow_start")
    if allowance <= 0:
        allowance = conc if conc > 0 else INITIAL
        slow = "0" if conc > 0 else "1"
    cap = conc if conc > 0 else CEILING
    if done.throttled:
        h["throttled"] = h.get("throttled", 0) + 1
        granted = now if was_granted is None else was_granted - ask.hold_s
        if granted >= h.get("last_cut", 0.0):  # sent after the last cut: news
            spent = done.retry_after_s is not None and done.retry_after_s > 0
            allowance = max(1.0, min(allowance, serving) * (CUT if spent else SOFT_CUT))
            slow = "0"
            h["last_cut"] = now
    elif used >= 0:
        allowance = min(cap, allowance + (1 if slow == "1" else INCREASE / allowance))
    h["allowance"], h["slow_start"] = allowance, slow
