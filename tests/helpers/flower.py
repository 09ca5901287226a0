"""Starting Flower on a free port and reading it (and /metrics) with Basic auth."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vpsweb import settings
from vpsweb.local.processes import (
    free_port,
    stop_process,
)

USER = "ops"


# Accepted by vpsweb: 20 characters, punctuation and a ':' but no comma.
PASSWORD = "Zq9/+=:@#% x?k-7Lm2w"


def status(url: str, credentials: str | None) -> int:
    """The HTTP status of a GET with ``credentials`` sent as-is in a Basic header."""
    req = urllib.request.Request(url)
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def start_flower(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m vpsweb.monitoring.flower` on a free loopback port, once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpsweb.monitoring.flower",
            "--address=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if status(f"{base}/healthcheck", None) == 200:
                return proc, base
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            pytest.fail(f"Flower did not start:\n{log.read_text()}")
        time.sleep(0.2)


def base_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env[settings.REDIS_URL_ENV] = redis_url
    return env


def get(url: str, *, auth: bool = True) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
