"""Shared fixtures: real redis-server, real simulator, real celery workers.

Everything is started on free loopback ports by the tests themselves, so the suite
is isolated from (and does not need) any Redis already running on the machine.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import CLI_DATA_DIR
from tests.helpers.config import FAKE_KEY, make_config_dir
from tests.helpers.redis_server import start_redis
from vpsweb.config import load_config
from vpsweb.local.processes import RedisServer, start_worker, stop_process


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def simulator() -> Iterator[str]:
    from vpsweb.local.simulator_process import start_simulator_process

    # Short, but not zero: with jitter a job's parallel candidates finish in a varying
    # order, as real ones do (a ~0.1 s call costs a job of five stages well under 1 s).
    proc, url = start_simulator_process(extra_args=["--latency-ms", "60", "--jitter-ms", "40"])
    yield url
    stop_process(proc)


@pytest.fixture()
def sim_stats(simulator: str):
    """The session simulator's counts. A test compares them before and after its job,
    so it starts only once the simulator is quiet: a job an earlier test left running
    (a cancelled one's stages, say) would otherwise add its calls to this test's."""

    def read() -> dict:
        with urllib.request.urlopen(simulator.removesuffix("/v1") + "/stats", timeout=5) as resp:
            return json.load(resp)

    last, deadline = read(), time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = read()
        if now == last:
            break
        last = now
    return read


@pytest.fixture(scope="session")
def worker_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-logs")


@pytest.fixture(scope="session")
def workers_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session workers' config: the shipped one plus the fault-injection models, so
    that a test's client may name them (workers refuse models they do not know)."""
    return make_config_dir(tmp_path_factory.mktemp("workers-config"))


@pytest.fixture(scope="session")
def workers(
    redis_server: RedisServer, simulator: str, worker_logs: Path, workers_config: Path
) -> Iterator[list]:
    """Two real `celery worker` processes (threads pool) with a fake API key in their env."""
    env = {
        "VPSWEB_SIMULATOR_URL": simulator,
        "DEEPSEEK_API_KEY": FAKE_KEY,
        "VPSWEB_CONFIG_DIR": str(workers_config),
    }
    procs = [
        start_worker(
            redis_server.url,
            env=env,
            concurrency=8,
            name=f"w{i}@%h",
            log_path=worker_logs / f"w{i}.log",
        )
        for i in range(2)
    ]
    yield procs
    for p in procs:
        stop_process(p)


@pytest.fixture()
def test_config(tmp_path: Path):
    return load_config(make_config_dir(tmp_path))


@pytest.fixture(autouse=True)
def _no_leaked_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VPSWEB_REDIS_URL", "VPSWEB_OFFLINE", "VPSWEB_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)


# The longest tests of all (a 100 s SIGKILL recovery, 50 jobs under LLM faults, the
# bench): started before the other slow ones, so that none of them ends the run.
LONGEST = (
    "tests/integration/orchestrator/test_faults.py",
    "tests/integration/bench/test_bench_smoke.py",
)


def _start_order(item: pytest.Item) -> tuple[int, int]:
    """Slow fault-injection, load and browser tests first (the longest of them before
    the rest), then the other integration tests, unit tests last."""
    longest = 0 if item.nodeid.startswith(LONGEST) else 1
    for rank, marker in enumerate(("slow", "integration")):
        if item.get_closest_marker(marker) is not None:
            return rank, longest
    return 2, longest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (make test) the longest tests start first, spread over the
    workers, and the many short ones fill in around them; a serial run is reordered
    the same way (a stable sort: each group keeps its collection order)."""
    items.sort(key=_start_order)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(CLI_DATA_DIR, ignore_errors=True)
