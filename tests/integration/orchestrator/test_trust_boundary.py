"""The trust boundary: a submitter chooses what to translate, never where a worker sends
its key; secrets never leave the worker; model output stays out of Celery and Flower."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis

from tests.helpers.cluster import Cluster
from tests.helpers.config import edit_yaml, make_config_dir
from tests.helpers.stage_calls import calls_per_job
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.errors import JobFailed
from vpsweb.files.output import save_output
from vpsweb.local.processes import free_port, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CANARY = f"sk-canary-{uuid.uuid4().hex}"
MALFORMED_ANSWER = "I'm sorry, I cannot help with that request right now."


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Recorder(BaseHTTPRequestHandler):
    """An endpoint a hostile submitter controls: it records what reaches it."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        type(self).seen.append(dict(self.headers))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def hostile_endpoint() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def deepseek_via_simulator(models: dict[str, Any], sim_url: str) -> None:
    """The workers' own config: DeepSeek's calls, with the worker's key, go to the simulator."""
    models["providers"]["deepseek"]["base_url"] = sim_url
    for name in ("sim-malformed", "sim-fail401"):
        models["models"][f"ds-{name}"] = {
            "provider": "deepseek",
            "name": name,
            "price": {"input_per_1k": 0.001, "output_per_1k": 0.002, "currency": "USD"},
        }


def test_a_submitter_cannot_send_a_workers_key_elsewhere(tmp_path: Path, hostile_endpoint):
    c = Cluster(tmp=tmp_path / "cluster", models_edit=deepseek_via_simulator)
    try:
        c.add_worker(env={"DEEPSEEK_API_KEY": CANARY, "REDIS_PASSWORD": "not-a-key"})
        # The submitter's own models.yaml points DeepSeek at itself, with another variable
        # of the worker's environment as the "key".
        theirs = make_config_dir(tmp_path / "submitter")

        def hostile(d: dict[str, Any]) -> None:
            d["providers"]["deepseek"].update(
                base_url=hostile_endpoint, api_key_env="REDIS_PASSWORD"
            )

        edit_yaml(theirs / "models.yaml", hostile)
        with Client(redis_url=c.redis.url, config=load_config(theirs)) as client:
            out = client.submit(
                poem="The fog comes\non little cat feet.",
                source_lang="en",
                target_lang="zh-CN",
                parallel_count=2,
                offline=False,
            ).result(timeout=60)
        by_key = c.sim_stats()["by_key"]
    finally:
        c.close()
    assert Recorder.seen == []  # nothing went to the submitter's endpoint
    # Every call went where the worker's config says, with the worker's DeepSeek key.
    assert by_key == {fingerprint(CANARY): calls_per_job(2)}
    assert out.totals.llm_calls == calls_per_job(2)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d: d["modes"]["hybrid"]["steps"]["editor_review"].update(model="theirs"),
            "editor_review: model 'theirs' is not in this cluster's models.yaml",
        ),
        (
            lambda d: d["modes"]["hybrid"]["steps"]["evaluation"].update(max_tokens=16_000),
            "evaluation: max_tokens 16000 exceeds this cluster's 8192",
        ),
        (
            lambda d: d.update(retention_s=10**8),
            "retention_s 100000000 exceeds this cluster's 604800",
        ),
    ],
)
def test_workers_refuse_a_plan_beyond_their_own_config(tmp_path: Path, change, reason) -> None:
    c = Cluster(tmp=tmp_path / "cluster")
    try:
        c.add_worker()
        theirs = make_config_dir(tmp_path / "submitter")
        edit_yaml(theirs / "models.yaml", add_their_model)
        edit_yaml(theirs / "pipeline.yaml", change)
        with Client(redis_url=c.redis.url, config=load_config(theirs)) as client:
            job = c.submit(client, parallel_count=2)
            with pytest.raises(JobFailed) as info:
                job.result(timeout=30)
        calls = c.sim_stats()["total_requests"]
    finally:
        c.close()
    assert info.value.stage == "Submission"
    assert info.value.cause.startswith("refused by this cluster's workers: ")
    assert reason in info.value.cause
    assert calls == 0  # refused before any call


def add_their_model(models: dict[str, Any]) -> None:
    """A model (and provider) that only the submitter's config has."""
    models["providers"]["theirs"] = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "HOME"}
    models["models"]["theirs"] = {
        "provider": "theirs",
        "name": "theirs",
        "price": {"input_per_1k": 0, "output_per_1k": 0, "currency": "USD"},
    }


def _flower(c: Cluster) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "VPSWEB_REDIS_URL": c.redis.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpsweb.cli", "flower", "--dev-no-auth", "--port", str(port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(c.tmp / "flower.log", "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    c.wait_for(lambda: _get(f"{base}/api/workers?refresh=1") is not None, 30, "Flower")
    return proc, base


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode()
    except (OSError, urllib.error.HTTPError):
        return None


def _everything_in_redis(url: str) -> str:
    """Every key and value of every type, as text."""
    r = redis.Redis.from_url(url, decode_responses=True)
    parts = []
    for key in r.scan_iter("*"):
        kind = r.type(key)
        if kind == "string":
            value: Any = r.get(key)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        else:  # stream
            value = r.xrange(key)
        parts.append(f"{key} {json.dumps(value, ensure_ascii=False, default=str)}")
    return "\n".join(parts)


def _run_three_jobs(c: Cluster, out_dir: Path) -> list:
    def use(step: str, model: str):
        def change(d: dict[str, Any]) -> None:
            d["modes"]["hybrid"]["steps"][step]["model"] = model

        return change

    jobs = []
    with Client(redis_url=c.redis.url, config=c.config) as client:
        good = c.submit(client, parallel_count=2, offline=False)
        save_output(good.result(timeout=60), out_dir)
        jobs.append(good)
    for step, model in (
        ("translator_revision", "ds-sim-malformed"),
        ("initial_translation", "ds-sim-fail401"),
    ):
        # The client's own config, in a copy of its own: the workers' stays as it is.
        config_dir = c.tmp / f"config-{step}"
        shutil.copytree(c.config_dir, config_dir)
        edit_yaml(config_dir / "pipeline.yaml", use(step, model))
        with Client(redis_url=c.redis.url, config=load_config(config_dir)) as client:
            job = c.submit(client, parallel_count=2, offline=False)
            with pytest.raises(JobFailed):
                job.result(timeout=60)
            jobs.append(job)
    return jobs


def test_secrets_and_model_output_stay_where_they_belong(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, models_edit=deepseek_via_simulator)
    flower = None
    try:
        c.add_worker(name="canary@%h", env={"DEEPSEEK_API_KEY": CANARY})
        flower, base = _flower(c)
        time.sleep(1.0)  # Flower's event consumer attaches
        _, bad_revision, bad_key = _run_three_jobs(c, tmp_path / "out")
        time.sleep(2.0)  # Flower takes in the last task events
        places = {
            "redis (every key, Celery's included)": _everything_in_redis(c.redis.url),
            "worker log": (tmp_path / "canary.log").read_text(errors="replace"),
            "result files": "\n".join(p.read_text() for p in (tmp_path / "out").iterdir()),
            "flower tasks": _get(f"{base}/api/tasks?limit=1000") or "",
            "flower workers": _get(f"{base}/api/workers") or "",
        }
        meta = f"celery-task-meta-{bad_revision.id}.translator_revision"
        celery_results = [redis.Redis.from_url(c.redis.url, decode_responses=True).get(meta)]
        record = bad_revision.record()
        unauthorised = bad_key.record()
        fingerprints = c.sim_stats()["by_key"]
    finally:
        if flower is not None:
            stop_process(flower)
        c.close()
    assert fingerprints.get(fingerprint(CANARY), 0) >= 5  # the key really was used
    for place, text in places.items():
        assert CANARY not in text, f"the worker's API key leaked into {place}"
        assert CANARY[3:-4] not in text, f"part of the worker's API key leaked into {place}"
    assert places["flower tasks"] and bad_revision.id in places["flower tasks"]
    # The unusable answer appears in the job's own record only, short and labelled.
    assert "the answer began: \"I'm sorry" in (
        record.error or ""
    ) or "the answer began: 'I'm sorry" in (record.error or "")
    assert celery_results and MALFORMED_ANSWER[:20] not in celery_results[0]
    assert MALFORMED_ANSWER[:20] not in places["flower tasks"]
    assert "HTTP 401" in (unauthorised.error or "")
