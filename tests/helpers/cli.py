"""Running the `vpsweb` command as a user does, with the tests' own data directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.helpers.config import REPO
from vpsweb import settings

# Embedded runs keep their jobs in a per-user store: the tests' own, not the user's.
CLI_DATA_DIR = Path(tempfile.mkdtemp(prefix="vpsweb-test-data-"))
# An embedded `vpsweb translate --offline` gives its simulator 300 +- 150 ms a call unless
# this is set (so that a demo's progress can be seen); the tests' runs measure nothing
# about that time and take 20 ms. Tests about timing (Ctrl-C mid-job, the live display)
# pass their own value in ``env``.
SIM_LATENCY_ENV = f"{settings.SIM_ENV_PREFIX}LATENCY_MS"
SIM_LATENCY_MS = "20"


def cli_env(env: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> dict[str, str]:
    merged = {
        SIM_LATENCY_ENV: SIM_LATENCY_MS,
        **os.environ,
        settings.DATA_DIR_ENV: str(CLI_DATA_DIR),
        RUN_MARK_ENV: RUN_MARK,
        **(env or {}),
    }
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


FOG = str(REPO / "examples" / "fog.txt")


TRANSLATE_FOG = ("translate", FOG, "--source-lang", "en", "--target-lang", "zh-CN")


# redis-server rewrites its command line to "redis-server 127.0.0.1:PORT".
MARKERS = ("redis-server", "vpsweb.simulator", "vpsweb.workers.app")
# Every process that cli_env starts (and its children, which inherit it) carries this
# pytest process's own mark, so that other pytest processes (xdist workers, another
# checkout's suite) running vpsweb on the same machine are not counted as ours.
RUN_MARK_ENV = "VPSWEB_TESTS_RUN_MARK"
RUN_MARK = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def our_processes() -> set[int]:
    """PIDs of redis-servers, simulators and workers started by vpsweb from this pytest
    process's CLI runs (found by their command line and RUN_MARK in their environment)."""
    mark = f"{RUN_MARK_ENV}={RUN_MARK}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not any(m in cmd for m in MARKERS):
                continue
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except OSError:
            continue
        pids.add(int(entry.name))
    return pids


def wait_gone(before: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = our_processes() - before
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def one_line(res: subprocess.CompletedProcess[str], code: int) -> str:
    lines = res.stderr.splitlines()
    assert res.returncode == code, res.stderr
    assert len(lines) == 1 and lines[0].startswith("vpsweb: "), res.stderr
    return lines[0]
