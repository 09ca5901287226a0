"""The per-user store of embedded runs, so that their jobs outlive the run.

`vpsweb translate` without a cluster keeps its Redis data (append-only file) in
the user's data directory (``settings.data_dir()``, e.g. ~/.local/share/vpsweb);
`vpsweb jobs`, `status` and `result` without a cluster open the same store later.
One process at a time owns it (a file lock); others read through the owner's
running Redis, or, if the lock is busy and no Redis answers, are told so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import redis

from vpsweb import settings
from vpsweb.errors import SettingsError
from vpsweb.local.processes import RedisServer
from vpsweb.local.store_server import start_server


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "redis"
        self.port_file = root / "redis.port"
        self._lock: IO[bytes] | None = None
        self.server: RedisServer | None = None

    def try_lock(self) -> bool:
        """Own the store (False if another process does)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / "lock", "wb")  # noqa: SIM115 - held while owned
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle
        return True

    def start(self, preexec_fn: Callable[[], None] | None = None) -> str:
        """Start the store's Redis (the lock must be held) with a server that can read
        its data (see store_server); its URL."""
        self.server = start_server(self.data, preexec_fn=preexec_fn)
        self.port_file.write_text(f"{self.server.port} {os.getpid()}\n")
        return self.server.url

    def cancel_leftovers(self) -> list[str]:
        """Cancel the jobs a killed run left unfinished (their tasks are still in the
        store's queues): nobody watches them, and a worker started now would otherwise
        pay for their calls. The ids cancelled."""
        from vpsweb.orchestrator.lifecycle import cancel_job
        from vpsweb.storage import connect

        assert self.server is not None
        storage = connect(self.server.url)
        cancelled = []
        try:
            for job_id in storage.jobs.overdue(float("inf"), limit=10_000):
                plan, status = storage.jobs.plan(job_id), storage.jobs.status(job_id)
                # A manual job is meant to outlive the run: a later run resumes it.
                if plan is None or status is None or status.terminal or plan.manual_steps:
                    continue
                reason = "cancelled: the vpsweb run that started it ended before the job did"
                if cancel_job(storage, job_id, plan, reason):
                    cancelled.append(job_id)
        finally:
            storage.close()
        return cancelled

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(keep_data=True)
            self.server = None
        self.port_file.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def running_url(self) -> str | None:
        """The URL of the owner's Redis, if one answers."""
        try:
            port = int(self.port_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        url = f"redis://127.0.0.1:{port}/0"
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.RedisError:
            return None
        return url

    @contextlib.contextmanager
    def opened(self) -> Iterator[str]:
        """A URL to read the store's jobs: the running one, or one started for the
        duration of the block."""
        url = self.running_url()
        if url is not None:
            yield url
            return
        if not self.data.is_dir():
            raise SettingsError(
                f"no Redis URL and no local jobs: set {settings.REDIS_URL_ENV} or pass "
                f"--redis-url (embedded runs keep their jobs in {self.root})"
            )
        if not self.try_lock():
            raise SettingsError(f"the local store {self.root} is busy; try again in a moment")
        try:
            url = self.start()
            self.cancel_leftovers()  # no run owns the store: its jobs cannot finish
            yield url
        finally:
            self.stop()
