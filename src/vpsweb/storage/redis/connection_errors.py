"""Redis connection failures, translated into the storage seam's own error.

Callers of the store (workers, clients) handle ``StoreUnavailable`` without
knowing which store is behind the interface; the message names the server.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from vpsweb.errors import StoreUnavailable

T = TypeVar("T", bound=type)


def describe(client: redis.Redis, exc: Exception) -> str:
    kwargs = client.connection_pool.connection_kwargs
    where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    if (
        isinstance(exc, redis.AuthenticationError)
        or "NOAUTH" in str(exc)
        or "WRONGPASS" in str(exc)
    ):
        return f"Redis at {where} refused the credentials: check the password in the URL"
    return f"cannot reach Redis at {where} ({exc}); is it running, and is the URL right?"


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
            raise StoreUnavailable(describe(self.redis, exc)) from exc
        except redis.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise StoreUnavailable(describe(self.redis, exc)) from exc
            raise

    return call


def translating(cls: T) -> T:
    """Wrap every public method the class defines itself (generators excepted: they
    handle reconnection themselves)."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        if inspect.isgeneratorfunction(member):
            continue
        setattr(cls, name, _translating(member))
    return cls


def translating_async(cls: T) -> T:
    """As ``errors.translating``, for coroutine methods: StoreUnavailable, not redis's."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await method(self, *args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
                raise StoreUnavailable(describe(self.redis, exc)) from exc

        return call

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, wrap(member))
    return cls
