"""A private cluster for one fault-injection test: its own Redis (with AOF if asked),
simulator, config, workers and broker (Redis, or RabbitMQ in a vhost of its own).

Fault tests kill and restart things, so they never share the session's services.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.config import edit_yaml, make_config_dir
from tests.helpers.poems import FOG_OPENING as POEM
from tests.helpers.redis_server import start_redis
from tests.helpers.sentinel import SentinelGroup
from vpsweb import settings
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.local.processes import spawn_worker, stop_process, wait_for_worker
from vpsweb.local.simulator_process import start_simulator_process
from vpsweb.workers.factory import create_app

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"


def rabbitmq_vhost() -> str:
    """A fresh vhost on the machine's RabbitMQ; skipped where there is none, but on CI
    (CI=true) a missing RabbitMQ is a failure, not a skip."""
    name = f"vpsweb-test-{uuid.uuid4().hex[:8]}"
    ctl = shutil.which("rabbitmqctl")
    done = ctl and subprocess.run([ctl, "add_vhost", name], capture_output=True, timeout=60)
    if not done or done.returncode != 0:
        reason = (
            f"no RabbitMQ to test against ({done.stderr.decode() if done else 'no rabbitmqctl'})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    subprocess.run(
        [ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return name


class Cluster:
    """Options (keyword-only):
    tmp: a directory for the config and logs.
    latency_ms / sim_args: the simulator's latency and extra flags.
    broker: "redis" (the state store's Redis) or "amqp" (RabbitMQ, own vhost).
    appendonly: persist Redis with AOF, so that it can be restarted mid-job (with
      ``sentinel``: the primary, so that it can come back after a failover).
    edit: a function changing pipeline.yaml (timeouts, allowance, models).
    models_edit: a function changing the workers' models.yaml, given the simulator's URL
      (e.g. to send a real provider's calls, with its key, to the simulator).
    concurrency: threads per worker.
    sentinel: a primary, a replica and three Sentinels (tests.helpers.sentinel) instead
      of one Redis; the store and the broker are reached through Sentinel.
    """

    def __init__(
        self,
        *,
        tmp: Path,
        latency_ms: float = 0,
        sim_args: tuple[str, ...] = (),
        broker: str = "redis",
        appendonly: bool = False,
        edit: Callable[[dict[str, Any]], None] | None = None,
        models_edit: Callable[[dict[str, Any], str], None] | None = None,
        concurrency: int = 8,
        sentinel: bool = False,
    ) -> None:
        self.tmp = tmp
        self.sim_proc, self.sim_url = start_simulator_process(
            extra_args=["--latency-ms", str(latency_ms), *sim_args]
        )
        self.config_dir = make_config_dir(tmp, pipeline_edit=edit)
        if models_edit is not None:
            edit_yaml(self.config_dir / "models.yaml", lambda d: models_edit(d, self.sim_url))
        self.config = load_config(self.config_dir)
        self.sentinel = SentinelGroup(appendonly=appendonly).start() if sentinel else None
        self.redis = self.sentinel.primary if self.sentinel else start_redis(appendonly=appendonly)
        assert self.redis is not None
        self.store_url = self.sentinel.url if self.sentinel else self.redis.url
        self.vhost = rabbitmq_vhost() if broker == "amqp" else None
        self.broker_url = f"{RABBITMQ}/{self.vhost}" if self.vhost else self.store_url
        self.concurrency = concurrency
        self.workers: list[subprocess.Popen[bytes]] = []
        self._clients: list[Client] = []

    @property
    def store(self) -> redis.Redis:
        from vpsweb.storage.redis import redis_client

        return redis_client(self.store_url, decode_responses=True)

    def add_worker(
        self,
        name: str | None = None,
        queues: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        name = name or f"w{len(self.workers)}-{uuid.uuid4().hex[:6]}@%h"
        env = {
            **(env or {}),
            settings.SIMULATOR_URL_ENV: self.sim_url,
            settings.CONFIG_DIR_ENV: str(self.config_dir),
            settings.BROKER_URL_ENV: self.broker_url,
        }
        proc, node = spawn_worker(
            self.store_url,
            env=env,
            concurrency=self.concurrency,
            queues=queues,
            name=name,
            log_path=self.tmp / f"{name.split('@')[0]}.log",
        )
        app = create_app(self.store_url, self.broker_url, self.config)
        try:
            wait_for_worker(app, node, proc, timeout_s=60)
        finally:
            app.close()
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and everything it spawned: no warm shutdown, no cleanup."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def client(self) -> Client:
        client = Client(redis_url=self.store_url, config=self.config)
        self._clients.append(client)
        return client

    def submit(self, client: Client, **kw: Any):
        args: dict[str, Any] = {
            "poem": POEM,
            "source_lang": "en",
            "target_lang": "zh-CN",
            "title": "Fog",
            "author": "Carl Sandburg",
            "offline": True,
        }
        args.update(kw)
        return client.submit(**args)

    def sim_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.sim_url.removesuffix("/v1") + "/stats", timeout=5) as r:
            return dict(json.load(r))

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Seconds until ``predicate`` held (polling every 0.1 s); fails the test after."""
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout_s:
                pytest.fail(f"{what}: not within {timeout_s:g}s")
            time.sleep(0.1)
        return time.monotonic() - start

    def leases(self) -> dict[str, str]:
        """Every step lease held now: "job:step" -> owner token."""
        found = {}
        for key in self.store.scan_iter("vpsweb:job:*:lease:*"):
            owner = self.store.get(key)
            if owner:
                _, _, job, _, step = key.split(":", 4)  # vpsweb:job:{<job>}:lease:<step>
                found[f"{job.strip('{}')}:{step}"] = owner
        return found

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for proc in self.workers:
            stop_process(proc, grace_s=5)
        stop_process(self.sim_proc)
        if self.sentinel:
            self.sentinel.stop()
        else:
            self.redis.stop()
        if self.vhost:
            subprocess.run(["rabbitmqctl", "delete_vhost", self.vhost], capture_output=True)
