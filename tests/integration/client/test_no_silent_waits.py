"""Nobody to run the job: the client says so within seconds, naming the queue.

Workers announce themselves (and the queues they consume) with a heartbeat in
Redis; followers (`Job.events`, `Job.result`, `translate`, `watch`) check it while
their job is quiet.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.helpers.cli import TRANSLATE_FOG, cli_env
from tests.helpers.config import REPO
from tests.helpers.jobs import submit
from tests.helpers.redis_server import start_redis
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.domain.progress import EventKind
from vpsweb.local.processes import RedisServer, start_worker, stop_process

pytestmark = pytest.mark.integration


@pytest.fixture()
def lonely_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


def test_job_result_warns_when_no_worker_runs(lonely_redis, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="vpsweb")
    with Client(redis_url=lonely_redis.url, config=load_config()) as client:
        job = submit(client, parallel_count=1)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            job.result(timeout=6)
    warnings = [r.getMessage() for r in caplog.records if r.name == "vpsweb"]
    assert len(warnings) == 1, warnings  # said once, not every check
    assert "no worker is running against this Redis" in warnings[0]
    assert "vpsweb worker" in warnings[0]
    assert time.monotonic() - started < 10


def test_a_missing_queue_is_named_then_cleared(lonely_redis, simulator, worker_logs) -> None:
    """A worker for the candidates only: the job's other queues are named; once a worker
    for them arrives the warning is withdrawn and the job finishes."""
    env = {"VPSWEB_SIMULATOR_URL": simulator}
    first = start_worker(
        lonely_redis.url,
        env=env,
        queues=["vpsweb.candidates"],
        concurrency=4,
        log_path=worker_logs / "candidates-only.log",
    )
    second = None
    try:
        with Client(redis_url=lonely_redis.url, config=load_config()) as client:
            missing = client.missing_workers()
            assert len(missing) == 2, missing
            assert "queue vpsweb.evaluation (evaluation, revision_check, finalize)" in missing[0]
            assert "queue vpsweb.review (editor_review, translator_revision)" in missing[1]
            assert "`vpsweb worker --queues vpsweb.evaluation`" in missing[0]
            job = submit(client, parallel_count=2)
            seen: list[tuple[str, str]] = []
            for event in job.events(timeout=120):
                if event.event is EventKind.WARNING:
                    seen.append((event.status, event.message))
                    if len(seen) == 2 and second is None:
                        second = start_worker(
                            lonely_redis.url,
                            env=env,
                            concurrency=4,
                            log_path=worker_logs / "all-queues.log",
                        )
            assert job.status().value == "succeeded"
        raised = [m for s, m in seen if s != "resolved"]
        cleared = [m for s, m in seen if s == "resolved"]
        assert sorted(raised) == sorted(missing) and sorted(cleared) == sorted(missing)
    finally:
        for proc in (first, second):
            if proc is not None:
                stop_process(proc)


def test_translate_says_no_worker_within_seconds(lonely_redis) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpsweb.cli",
            *TRANSLATE_FOG,
            "--offline",
            "--redis-url",
            lonely_redis.url,
            "--timeout",
            "8",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )
    assert proc.stderr is not None
    started = time.monotonic()
    warning = ""
    for line in proc.stderr:
        if "warning:" in line:
            warning = line
            break
    elapsed = time.monotonic() - started
    _, rest = proc.communicate(timeout=30)
    assert "no worker is running against this Redis" in warning and "vpsweb worker" in warning
    assert elapsed < 6, elapsed
    assert proc.returncode == 1 and "the job keeps running" in rest
