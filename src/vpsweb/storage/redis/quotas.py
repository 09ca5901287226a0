"""The cluster-wide quota in Redis: two scripts (quota_acquire.lua, quota_settle.lua)
and a blocking pop for a waiting call's wake-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from vpsweb.domain.permits import Bucket, Grant, QuotaAsk, QuotaState, Settlement
from vpsweb.storage.quotas import Quotas
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.lua import Lua

STALE_S = 5.0  # a waiting call that has not asked for this long has gone (worker died)


def _limits(bucket: Bucket | None) -> list[int]:
    if bucket is None:
        return [0, 0, 0]
    lim = bucket.limits
    return [lim.requests_per_minute, lim.tokens_per_minute, lim.max_concurrent]


def _bucket_keys(ask: QuotaAsk) -> list[str]:
    if ask.model is None:
        return []
    return [keys.quota(ask.model.name), keys.quota_in_flight(ask.model.name)]


@translating
class RedisQuotas(Quotas):
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._acquire = Lua(client, "quota_acquire.lua")
        self._settle = Lua(client, "quota_settle.lua")

    def acquire(self, ask: QuotaAsk, settle: Sequence[Settlement] = ()) -> Grant:
        p = ask.provider.name
        call_keys = [
            keys.quota(p),
            keys.quota_in_flight(p),
            keys.quota_queue(p),
            keys.quota_seen(p),
            keys.quota_flows(p),
            keys.quota_batches(p),
            *_bucket_keys(ask),
        ]
        args = [
            ask.ticket,
            ask.flow,
            int(ask.batch),
            ask.tokens,
            ask.hold_s,
            *_limits(ask.provider),
            *_limits(ask.model),
            STALE_S,
            int(ask.resume),
        ]
        if not settle:
            return _grant(self._acquire(keys=call_keys, args=args))
        pipe = self.redis.pipeline(transaction=False)
        for done in settle:
            self.settle_on(pipe, done)
        self._acquire(keys=call_keys, args=args, client=pipe)
        return _grant(pipe.execute()[-1])

    def settle(self, done: Sequence[Settlement], *, alone: bool = True) -> None:
        if not done:
            return
        pipe = self.redis.pipeline(transaction=False)
        for i, d in enumerate(done):
            self.settle_on(pipe, d, alone=alone and i == 0)
        pipe.execute()

    def settle_on(self, pipe: Any, done: Settlement, *, alone: bool = False) -> None:
        """quota_settle.lua for ``done`` on ``pipe`` (this store's, or a step's)."""
        ask, p = done.ask, done.ask.provider.name
        call_keys = [
            keys.quota(p),
            keys.quota_in_flight(p),
            keys.quota_queue(p),
            *_bucket_keys(ask),
        ]
        args = [
            done.permit,
            ask.tokens,
            -1 if done.used_tokens is None else done.used_tokens,
            int(done.throttled),
            -1 if done.retry_after_s is None else done.retry_after_s,
            done.waited_s,
            ask.provider.limits.tokens_per_minute,
            ask.provider.limits.max_concurrent,
            ask.model.limits.tokens_per_minute if ask.model else 0,
            ask.hold_s,
            int(alone),
        ]
        self._settle(keys=call_keys, args=args, client=pipe)

    def withdraw(self, ask: QuotaAsk) -> None:
        p = ask.provider.name
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(keys.quota_queue(p), ask.ticket)
        pipe.zrem(keys.quota_seen(p), ask.ticket)
        pipe.delete(keys.quota_wake(p) + ask.ticket)
        pipe.execute()

    def nap(self, ask: QuotaAsk, seconds: float) -> None:
        if seconds <= 0:
            return
        wake = keys.quota_wake(ask.provider.name) + ask.ticket
        self.redis.blpop([wake], timeout=max(0.01, seconds))

    def state(self, buckets: Sequence[str]) -> list[QuotaState]:
        pipe = self.redis.pipeline(transaction=False)
        for b in buckets:
            pipe.hgetall(keys.quota(b))
            pipe.zcard(keys.quota_in_flight(b))
            pipe.zcard(keys.quota_queue(b.partition("/")[0]))
        raw = pipe.execute()
        return [
            QuotaState.of(b, raw[3 * i], in_flight=int(raw[3 * i + 1]), queued=int(raw[3 * i + 2]))
            for i, b in enumerate(buckets)
        ]


def _grant(raw: list[Any]) -> Grant:
    if int(raw[0]) == 1:
        return Grant(granted=True, permit=str(raw[1]), ahead=int(raw[2]), room=int(raw[3]))
    return Grant(granted=False, ahead=int(raw[1]), retry_in_s=float(raw[2]), reason=str(raw[3]))
