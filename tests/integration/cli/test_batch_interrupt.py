"""Ctrl-C during `vpsweb batch` keeps every finished poem and cancels the rest; `batch
resume` (or the same command again) then pays only for the poems not finished, as the
simulator's call counts show."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.batch_cli import write_collection
from tests.helpers.cli import cli_env, run_cli
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from tests.helpers.stage_calls import calls_per_job
from vpsweb import settings

pytestmark = pytest.mark.integration

POEMS = 12
RUN = ("--source-lang", "en", "--target-lang", "zh-CN", "--offline", "--parallel-count", "1")


@pytest.fixture()
def cluster(tmp_path: Path):
    c = Cluster(tmp=tmp_path, latency_ms=250, concurrency=4)
    c.add_worker()
    yield c
    c.close()


def _quiet_calls(cluster: Cluster) -> int:
    """The simulator's request count once nothing is in flight and it stopped moving."""
    last, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = cluster.sim_stats()
        if stats["in_flight"] == 0 and stats["total_requests"] == last:
            return last
        last = stats["total_requests"]
        time.sleep(0.7)
    raise AssertionError(f"the simulator never went quiet: {cluster.sim_stats()}")


def test_ctrl_c_then_resume_pays_only_for_the_poems_not_finished(
    tmp_path: Path, cluster: Cluster
) -> None:
    source = write_collection(tmp_path, "directory", POEMS, f"interrupt {tmp_path.name}")
    out = tmp_path / "out"
    env = {
        settings.REDIS_URL_ENV: cluster.redis.url,
        settings.CONFIG_DIR_ENV: str(cluster.config_dir),
    }
    command = ("batch", str(source), *RUN, "--output-dir", str(out))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpsweb.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        cwd=REPO,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # plain lines: the first poem that ended
        seen.append(line)
        if "✓ poem-" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    found = re.search(r"batch ([0-9a-f]{12}) submitted", err)
    assert found, err
    batch = found.group(1)
    assert f"interrupted: batch {batch}:" in err and "no further LLM calls" in err
    assert f"vpsweb batch resume {batch} --output-dir {out}" in err

    paid = _quiet_calls(cluster)
    status = json.loads(run_cli("batch", "status", batch, "--json", env=env).stdout)
    counts = status["progress"]["counts"]
    finished, cancelled = counts["succeeded"], counts["cancelled"]
    assert finished >= 1 and cancelled >= 1 and finished + cancelled == POEMS, counts
    # What finished is kept and written, the rest listed as cancelled.
    assert len(list((out / "poems").glob("*.json"))) == finished
    assert f"{finished} translated, {cancelled} cancelled" in (out / "anthology.md").read_text()

    resumed = run_cli("batch", "resume", batch, "--output-dir", str(out), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{cancelled} poem(s) given a new job" in resumed.stderr
    assert f"{POEMS} poems: {POEMS} succeeded" in resumed.stdout
    assert _quiet_calls(cluster) - paid == cancelled * calls_per_job(1)
    assert len(list((out / "poems").glob("*.json"))) == POEMS

    # The same command again: every poem was translated with these settings already.
    paid = _quiet_calls(cluster)
    again = run_cli(*command, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{POEMS} translated before (reused, not paid again)" in again.stderr
    assert _quiet_calls(cluster) == paid
