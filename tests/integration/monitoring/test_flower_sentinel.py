"""`vpsweb flower` with the broker behind Sentinel follows a failover without a restart:
after the primary is SIGKILLed and the replica promoted, the same Flower process answers,
lists the worker (a broadcast over the broker) and sees the next job's tasks (its event
receiver reconnected through Sentinel)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers.cli import cli_env
from tests.helpers.cluster import Cluster
from tests.helpers.flower import PASSWORD, USER, get
from tests.helpers.sentinel import MASTER
from vpsweb import settings
from vpsweb.local.processes import free_port, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _start_flower(c: Cluster, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`vpsweb flower` as an operator runs it: Sentinel variables, no Redis URL."""
    assert c.sentinel is not None
    env = cli_env(
        {
            settings.REDIS_SENTINELS_ENV: ",".join(
                f"127.0.0.1:{p}" for p in c.sentinel.sentinel_ports
            ),
            settings.REDIS_MASTER_ENV: MASTER,
            settings.CONFIG_DIR_ENV: str(c.config_dir),
            settings.FLOWER_USER_ENV: USER,
            settings.FLOWER_PASSWORD_ENV: PASSWORD,
        },
        unset=(settings.REDIS_URL_ENV, settings.BROKER_URL_ENV),
    )
    port = free_port()
    command = ["flower", "--port", str(port), "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpsweb.cli", *command],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
    )
    return proc, f"http://127.0.0.1:{port}"


def _json(base: str, path: str) -> Any:
    code, body = get(base + path)
    return json.loads(body) if code == 200 else None


def _wait(
    what: str, check: Callable[[], bool], flower: subprocess.Popen[bytes], log: Path
) -> float:
    """Seconds until ``check()`` held; fails after 60 s or if Flower exited."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except OSError:
            pass  # Flower not listening yet
        assert flower.poll() is None, f"Flower exited:\n{log.read_text()}"
        assert time.monotonic() - start < 60, f"{what}: not within 60 s\n{log.read_text()}"
        time.sleep(0.3)


def _job_tasks(base: str, job_id: str) -> dict[str, Any]:
    tasks = _json(base, "/api/tasks?limit=100000") or {}
    return {k: v for k, v in tasks.items() if k.startswith(job_id)}


def _subscribers(port: int) -> int:
    """Connections to the server on ``port`` subscribed to a channel or pattern (Flower's
    event receiver, the workers' broadcast consumers), the Sentinels' aside."""
    conn = redis.Redis(port=port, socket_connect_timeout=1, decode_responses=True)
    try:
        clients = conn.client_list()
    finally:
        conn.close()
    return sum(
        1
        for c in clients
        if not c.get("name", "").startswith("sentinel") and int(c["sub"]) + int(c["psub"]) > 0
    )


def _all_done(base: str, job_id: str) -> bool:
    tasks = _job_tasks(base, job_id)
    names = {t["name"] for t in tasks.values()}
    return "vpsweb.finalize" in names and all(t["state"] == "SUCCESS" for t in tasks.values())


def test_flower_follows_a_sentinel_failover(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=100, sentinel=True, concurrency=4)
    assert c.sentinel is not None
    log = tmp_path / "flower.log"
    flower: subprocess.Popen[bytes] | None = None
    try:
        worker = c.add_worker(name="f1@%h")
        flower, base = _start_flower(c, log)

        def worker_online() -> bool:  # from the worker's heartbeat events
            status = _json(base, "/api/workers?status=1") or {}
            return any(name.startswith("f1@") and alive for name, alive in status.items())

        def worker_listed() -> bool:  # from a broadcast over the broker, answered now
            return any(n.startswith("f1@") for n in _json(base, "/api/workers?refresh=1") or {})

        _wait("Flower sees the worker's heartbeats", worker_online, flower, log)
        assert worker_listed()
        client = c.client()
        first = c.submit(client, parallel_count=2)
        first.result(timeout=60)
        _wait("Flower shows the first job's tasks", lambda: _all_done(base, first.id), flower, log)

        assert c.sentinel.primary is not None and c.sentinel.replica is not None
        subscribed = _subscribers(c.sentinel.primary.port)
        killed = c.sentinel.kill_primary()
        promoted_s = c.sentinel.wait_promoted() - killed
        # Events travel by PUBLISH: whatever is published before Flower subscribed again
        # on the new master is lost to it. So the next job starts once every subscriber
        # (Flower's receiver among them) is back.
        new_port = c.sentinel.replica.port
        _wait(
            "every subscriber back on the new master",
            lambda: _subscribers(new_port) >= subscribed,
            flower,
            log,
        )
        resubscribed_s = time.monotonic() - killed
        second = c.submit(client, parallel_count=2)
        output = second.result(timeout=60)
        done_s = time.monotonic() - killed
        seen_s = _wait(
            "Flower shows the second job's tasks", lambda: _all_done(base, second.id), flower, log
        )
        listed_s = _wait("Flower lists the worker again", worker_listed, flower, log)
        assert worker_online()
        queues = _json(base, "/api/queues/length")  # the broker page's Redis, via Sentinel
        tasks = _job_tasks(base, second.id)
        assert flower.poll() is None and worker.poll() is None
    finally:
        if flower is not None:
            stop_process(flower)
        c.close()
    print(
        f"\nFlower across a Sentinel failover: promoted {promoted_s:.1f} s after the kill, "
        f"{subscribed} subscribers (Flower's among them) back on the new master after "
        f"{resubscribed_s:.1f} s, "
        f"the second job done {done_s:.1f} s after it; Flower showed its "
        f"{len(tasks)} tasks {seen_s:.1f} s later and listed the worker after {listed_s:.1f} s"
    )
    assert output.totals.llm_calls > 0
    assert queues is not None and {q["name"] for q in queues["active_queues"]} >= {
        "vpsweb.candidates"
    }, queues
    names = sorted(str(t["name"]) for t in tasks.values())
    assert names.count("vpsweb.candidate") == 2, names
    assert {"vpsweb.evaluate", "vpsweb.editor_review", "vpsweb.translator_revision"} <= set(names)
    assert all(t["worker"].startswith("f1@") for t in tasks.values())
