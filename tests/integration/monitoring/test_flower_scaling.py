"""Flower with basic auth over real workers; horizontal scaling; SIGTERM mid-job."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers.config import FAKE_KEY, make_config_dir, use_models
from tests.helpers.jobs import submit
from tests.helpers.poems import FOG_OPENING as POEM
from tests.helpers.redis_server import start_redis
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.local.processes import (
    free_port,
    start_worker,
    stop_process,
    wait_for_worker,
)
from vpsweb.workers.factory import create_app

pytestmark = pytest.mark.integration

USER, PASSWORD = "ops", "flower-test-pw"
TASK_NAMES = {
    "vpsweb.candidate",
    "vpsweb.evaluate",
    "vpsweb.editor_review",
    "vpsweb.translator_revision",
    "vpsweb.revision_check",
    "vpsweb.finalize",
}


def http(url: str, *, auth: bool = True) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.fixture(scope="module")
def cluster(redis_server, workers, simulator, worker_logs, workers_config) -> Iterator[dict]:
    """A third worker beside the two session workers, and Flower with basic auth."""
    env = {
        "VPSWEB_SIMULATOR_URL": simulator,
        "DEEPSEEK_API_KEY": FAKE_KEY,
        "VPSWEB_CONFIG_DIR": str(workers_config),
    }
    # The third worker is started the way an operator does: `vpsweb worker`.
    third = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpsweb.cli",
            "worker",
            "--queues",
            "vpsweb.candidates,vpsweb.evaluation,vpsweb.review",
            "--concurrency",
            "8",
            "--name",
            "w2@%h",
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, **env, "VPSWEB_REDIS_URL": redis_server.url},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(worker_logs / "w2.log", "wb"),  # noqa: SIM115
    )
    wait_for_worker(create_app(redis_server.url), "w2@%h", third)
    port = free_port()
    flower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpsweb.cli",
            "flower",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
        ],
        env={
            **os.environ,
            "VPSWEB_REDIS_URL": redis_server.url,
            "VPSWEB_FLOWER_USER": USER,
            "VPSWEB_FLOWER_PASSWORD": PASSWORD,
        },
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(worker_logs / "flower.log", "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if http(f"{base}/api/workers?refresh=1")[0] == 200:
                break
        except OSError:
            pass
        assert flower.poll() is None, (worker_logs / "flower.log").read_text()
        assert time.monotonic() < deadline, "Flower did not start"
        time.sleep(0.3)
    time.sleep(1.0)  # let Flower's event consumer attach before tasks are sent
    yield {"flower": base, "workers": 3}
    stop_process(flower)
    stop_process(third)


def flower_tasks(base: str, job_id: str, expected: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = http(f"{base}/api/tasks?limit=100000")
        assert status == 200
        tasks = {k: v for k, v in json.loads(body).items() if k.startswith(job_id)}
        if len(tasks) >= expected and all(t["state"] == "SUCCESS" for t in tasks.values()):
            return tasks
        assert time.monotonic() < deadline, f"Flower saw {len(tasks)} tasks: {tasks}"
        time.sleep(0.5)


def test_flower_lists_every_task_with_safe_arguments(cluster, redis_server):
    base = cluster["flower"]
    with Client(redis_url=redis_server.url, config=load_config()) as c:
        job = submit(c, parallel_count=4)
        job.result(timeout=60)
    # 4 candidates, evaluation, review, revision, revision check, finalize.
    tasks = flower_tasks(base, job.id, expected=9)
    assert len(tasks) == 9
    names = sorted(t["name"] for t in tasks.values())
    assert names.count("vpsweb.candidate") == 4
    assert set(names) == TASK_NAMES
    for t in tasks.values():
        assert t["args"].startswith(f"job={job.id}") and len(t["args"]) < 120
    # Credentials are required, for the API and for /metrics.
    assert http(f"{base}/api/tasks", auth=False)[0] == 401
    assert http(f"{base}/api/workers", auth=False)[0] == 401
    assert http(f"{base}/metrics", auth=False)[0] == 401
    assert http(f"{base}/metrics")[0] == 200
    # The broker page's queue lengths (Flower knows vpsweb's Redis transport by scheme).
    code, body = http(f"{base}/api/queues/length")
    assert code == 200 and "vpsweb.candidates" in body, body
    # Nothing secret or bulky leaks: no API key, no poem text, in any answer.
    answers = [
        http(f"{base}/api/tasks?limit=100000")[1],
        http(f"{base}/api/workers?refresh=1")[1],
        http(f"{base}/metrics")[1],
    ]
    answers += [http(f"{base}/api/task/info/{tid}")[1] for tid in tasks]
    for text in answers:
        assert FAKE_KEY not in text
        assert "little cat feet" not in text and POEM.strip() not in text


def test_tasks_spread_over_three_workers(cluster, redis_server):
    base = cluster["flower"]
    with Client(redis_url=redis_server.url, config=load_config()) as c:
        jobs = [submit(c, parallel_count=3) for _ in range(12)]
        for job in jobs:
            job.result(timeout=120)
    used: set[str] = set()
    for job in jobs:
        used |= {t["worker"] for t in flower_tasks(base, job.id, expected=7).values()}
    assert len(used) == 3, used


@pytest.mark.slow
def test_sigterm_to_a_worker_mid_job_loses_nothing(simulator, tmp_path):
    """Own Redis and two own workers, so the stopped worker holds part of the job."""
    config_dir = make_config_dir(
        tmp_path, pipeline_edit=lambda d: use_models(d, initial_translation="sim-slow")
    )
    cfg = load_config(config_dir)
    server = start_redis()
    # The workers share the client's config: they refuse models they do not know.
    env = {"VPSWEB_SIMULATOR_URL": simulator, "VPSWEB_CONFIG_DIR": str(config_dir)}
    procs = [
        start_worker(
            server.url, env=env, concurrency=2, name=f"t{i}@%h", log_path=tmp_path / f"t{i}.log"
        )
        for i in range(2)
    ]
    try:
        with Client(redis_url=server.url, config=cfg) as c:
            job = submit(c, parallel_count=4)
            for event in job.events(timeout=30):
                if event.event == "stage_started":
                    break
            time.sleep(0.3)  # both workers now hold running candidates
            os.killpg(procs[0].pid, signal.SIGTERM)
            out = job.result(timeout=90)
        assert procs[0].wait(timeout=30) == 0  # warm shutdown: finished its work first
        assert len(out.candidates) == 4 and all(x.ok for x in out.candidates)
        assert out.revision.translation
    finally:
        for p in procs:
            stop_process(p)
        server.stop()
