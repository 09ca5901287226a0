"""`vpsweb batch` without a cluster: an embedded one whose per-user store keeps the batch,
so that after a Ctrl-C `vpsweb batch resume` (its own embedded run on that store)
finishes it; nothing is left running after either."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.batch_cli import write_collection
from tests.helpers.cli import cli_env, our_processes, run_cli, wait_gone
from tests.helpers.config import REPO

pytestmark = pytest.mark.integration

RUN = ("--source-lang", "en", "--target-lang", "zh-CN", "--offline", "--parallel-count", "1")


def test_ctrl_c_in_an_embedded_run_then_resume_on_the_local_store(tmp_path: Path) -> None:
    before = our_processes()
    source = write_collection(tmp_path, "directory", 4, f"embedded {tmp_path.name}")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpsweb.cli", "batch", str(source), *RUN, "--output-dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env({"VPSWEB_SIM_LATENCY_MS": "2000"}, unset=("VPSWEB_REDIS_URL",)),
        cwd=REPO,
    )
    assert proc.stderr is not None
    said = ""
    for line in proc.stderr:
        said += line
        if "submitted" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    said += err
    assert proc.returncode == 130, said
    batch = re.search(r"batch ([0-9a-f]{12}) submitted", said).group(1)  # type: ignore[union-attr]
    assert f"vpsweb batch resume {batch} --output-dir {out}" in said
    assert wait_gone(before) == set()

    status = json.loads(run_cli("batch", "status", batch, "--json").stdout)
    counts = status["progress"]["counts"]
    assert counts["cancelled"] >= 1 and counts["succeeded"] + counts["cancelled"] == 4, counts

    resumed = run_cli(
        "batch", "resume", batch, "--output-dir", str(out), unset=("VPSWEB_REDIS_URL",)
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "starting embedded Redis, worker and LLM simulator" in resumed.stderr
    assert f"{counts['cancelled']} poem(s) given a new job" in resumed.stderr
    assert "4 poems: 4 succeeded" in resumed.stdout
    assert len(list((out / "poems").glob("*.json"))) == 4
    assert wait_gone(before) == set()


def test_detach_needs_a_cluster_and_starts_nothing(tmp_path: Path) -> None:
    before = our_processes()
    source = write_collection(tmp_path, "directory", 2, "detach")
    res = run_cli("batch", str(source), *RUN, "--detach", unset=("VPSWEB_REDIS_URL",))
    assert res.returncode == 2 and "--detach needs a cluster" in res.stderr
    same = run_cli("batch", str(source), *RUN, "--output-dir", str(source))
    assert same.returncode == 2 and "is the source directory" in same.stderr
    assert our_processes() - before == set()
