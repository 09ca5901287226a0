"""The Celery result backend of vpsweb's app: Redis, minus a leak of every chord.

Creating a chord's result registers each header task's result as "pending" with
the sender's backend, and the Redis backend subscribes to its channel. Nothing
in vpsweb ever waits on a Celery result (clients follow the store; workers and
the dispatcher run with joins denied), yet every subscription and result object
stayed for the life of the process: three per job of N=3 in each worker's
dispatcher, and as many Redis pub/sub channels (celery/celery#3812). Where a
join would be refused anyway, this backend registers nothing.
"""

from __future__ import annotations

from typing import Any

from celery._state import task_join_will_block
from celery.backends.redis import RedisBackend, SentinelBackend

from vpsweb.errors import SettingsError
from vpsweb.redis_sentinel import FollowingConnection
from vpsweb.redis_target import parse_target
from vpsweb.settings import BROKER_URL_ENV


class _Untracked:
    """A result backend that does not track results nobody in this process may join."""

    def add_pending_result(
        self, result: Any, weak: bool = False, start_drainer: bool = True
    ) -> Any:
        if task_join_will_block():
            return result
        return super().add_pending_result(  # type: ignore[misc]
            result, weak=weak, start_drainer=start_drainer
        )


class WorkerResultBackend(_Untracked, RedisBackend):
    """RedisBackend that does not track results nobody in this process may join."""


class WorkerSentinelBackend(_Untracked, SentinelBackend):
    """The same on a Sentinel-watched Redis: the master is asked of Sentinel, on every
    reconnect (vpsweb.redis_sentinel)."""

    def _get_sentinel_instance(self, **params: Any) -> Any:
        params.setdefault("connection_class", FollowingConnection)
        return super()._get_sentinel_instance(**params)


def backend_url(store_url: str, broker_url: str | None = None) -> str:
    """Celery's ``result_backend`` setting: this class, on the store's Redis."""
    return str(backend_settings(store_url, broker_url)["result_backend"])


def backend_settings(store_url: str, broker_url: str | None = None) -> dict[str, Any]:
    """Celery's result backend settings for the store (plain Redis, or Sentinel). A Redis
    Cluster store keeps them on the broker's Redis or Sentinel instead: Celery's Redis
    backend needs one Redis (a chord's counters, its result channels), and so does the
    broker, so the results follow it."""
    target = parse_target(store_url, "the store's URL")
    if target.is_cluster:
        scheme = (broker_url or "").partition(":")[0].lower()
        if scheme not in ("redis", "rediss", "redis+sentinel"):
            raise SettingsError(
                f"{BROKER_URL_ENV}: with a Redis Cluster store, Celery's results are kept "
                "on the broker's Redis: the broker must be a single Redis or a Sentinel "
                f"(redis://..., redis+sentinel://...), not {scheme or 'unset'}"
            )
        store_url = str(broker_url)
        target = parse_target(store_url, "the broker's URL")
    if not target.is_sentinel:
        return {"result_backend": f"{__name__}:{WorkerResultBackend.__name__}+{store_url}"}
    return {
        "result_backend": f"{__name__}:{WorkerSentinelBackend.__name__}+{target.kombu_url()}",
        "result_backend_transport_options": target.kombu_options(),
    }
