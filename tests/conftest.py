"""Shared fixtures: real redis-server, real simulator, real celery workers.

Everything is started on free loopback ports by the tests themselves, so the suite
is isolated from (and does not need) any Redis already running on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpsweb import settings
from vpsweb.config import load_config
from vpsweb.config.loader import _load_cached
from vpsweb.local.processes import RedisServer, start_worker, stop_process

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-vpsweb-test-FAKE-KEY-0123456789"

# Extra models for fault injection; the simulator obeys directives in model names.
TEST_MODELS = """
  sim-chat:
    provider: simulator
    name: sim-chat
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-reasoner:
    provider: simulator
    name: sim-reasoner
    reasoning: true
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-fail500:
    provider: simulator
    name: sim-fail500
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-fail401:
    provider: simulator
    name: sim-fail401
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-fail404:
    provider: simulator
    name: sim-fail404
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-429:
    provider: simulator
    name: sim-429x999
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-malformed:
    provider: simulator
    name: sim-malformed
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-malformedx1:
    provider: simulator
    name: sim-malformedx1
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-truncate:
    provider: simulator
    name: sim-truncate
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-truncatex1:
    provider: simulator
    name: sim-truncatex1
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-slow:
    provider: simulator
    name: sim-slow1500
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
"""


def make_config_dir(tmp: Path, *, pipeline_edit=None) -> Path:
    """A copy of config/ with the test models added; ``pipeline_edit(dict)`` may change it."""
    import yaml

    target = tmp / "config"
    shutil.copytree(REPO / "config", target)
    models = (target / "models.yaml").read_text() + TEST_MODELS
    (target / "models.yaml").write_text(models)
    if pipeline_edit is not None:
        data = yaml.safe_load((target / "pipeline.yaml").read_text())
        pipeline_edit(data)
        (target / "pipeline.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    _load_cached.cache_clear()
    return target


def use_models(data: dict, *, mode: str = "hybrid", **steps: str) -> None:
    for step, model in steps.items():
        data["modes"][mode]["steps"][step]["model"] = model


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def simulator() -> Iterator[str]:
    from vpsweb.local.simulator_process import start_simulator_process

    proc, url = start_simulator_process(extra_args=["--latency-ms", "60", "--jitter-ms", "40"])
    yield url
    stop_process(proc)


@pytest.fixture()
def sim_stats(simulator: str):
    def read() -> dict:
        with urllib.request.urlopen(simulator.removesuffix("/v1") + "/stats", timeout=5) as resp:
            return json.load(resp)

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


# Embedded runs keep their jobs in a per-user store: the tests' own, not the user's.
CLI_DATA_DIR = Path(tempfile.mkdtemp(prefix="vpsweb-test-data-"))


def cli_env(env: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> dict[str, str]:
    merged = {**os.environ, settings.DATA_DIR_ENV: str(CLI_DATA_DIR), **(env or {})}
    for name in unset:
        merged.pop(name, None)
    return merged


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    timeout: float = 120,
):
    return subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", *args],
        env=cli_env(env, unset),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(CLI_DATA_DIR, ignore_errors=True)
