"""The store's Lua scripts, one round trip each, also inside a pipeline.

redis-py's ``Script`` runs EVALSHA, and a pipeline holding one first asks Redis
whether the script is loaded (SCRIPT EXISTS): one extra round trip per pipeline,
14 per job at N=3 in the worker's hot path. In a pipeline a script goes as EVAL
with its text instead (Redis caches it by its SHA); alone, as EVALSHA, falling
back to EVAL after a Redis restart forgot it. On a Redis Cluster the pipeline is a
``ClusterPipeline`` (not a ``Pipeline`` subclass), which routes each EVAL by its first
key: every script's keys are in one slot (see keys.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.cluster import ClusterPipeline


def load_lua(name: str) -> str:
    return resources.files("vpsweb.storage.redis").joinpath(name).read_text(encoding="utf-8")


class Lua:
    """A script of this package (``name``: its file), bound to ``client``."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, name: str) -> None:
        self.body = load_lua(name)
        self._script = client.register_script(self.body)

    def __call__(
        self,
        *,
        keys: Sequence[Any],
        args: Sequence[Any] = (),
        client: Any = None,
    ) -> Any:
        if isinstance(client, (Pipeline, ClusterPipeline)):
            # EVAL by hand: ClusterPipeline.eval() is a stub that takes no script.
            return client.execute_command("EVAL", self.body, len(keys), *keys, *args)
        return self._script(keys=keys, args=args, client=client)
