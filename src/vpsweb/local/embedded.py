"""Embedded mode: a private Redis, a local worker and (offline) the simulator.

`vpsweb translate` uses this when no VPSWEB_REDIS_URL is set, so one command runs
a job through exactly the canvas a cluster runs. Everything it starts is stopped
on exit, on errors and on Ctrl-C; children also die with this process (Linux
parent-death signal), so nothing is left behind even if it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType

from vpsweb import settings
from vpsweb.local.data_dir import LocalStore
from vpsweb.local.processes import RedisServer, start_worker, stop_process

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


class EmbeddedCluster:
    """Context manager; ``redis_url`` is set once entered.

    Options (keyword-only):
      simulator: also start the offline LLM simulator and point the worker at it.
      concurrency: the worker's thread count.
      simulator_args: extra `vpsweb simulate-llm` flags (latency, fault rates).
      store: the per-user store to keep the jobs in (its lock already held); None
        for a throw-away Redis (--ephemeral).
    """

    def __init__(
        self,
        *,
        simulator: bool,
        concurrency: int = 16,
        simulator_args: list[str] | None = None,
        store: LocalStore | None = None,
    ) -> None:
        self.simulator = simulator
        self.concurrency = concurrency
        self.simulator_args = simulator_args or []
        self.store = store
        self.redis = RedisServer()
        self.redis_url = ""
        self.simulator_url: str | None = None
        self.leftovers: list[str] = []  # jobs of a killed earlier run, cancelled
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logdir = Path(tempfile.mkdtemp(prefix="vpsweb-embedded-"))
        self._old_sigterm: object = None

    def __enter__(self) -> EmbeddedCluster:
        self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        if self.store is not None:
            self.redis_url = self.store.start(preexec_fn=_die_with_parent)
            self.leftovers = self.store.cancel_leftovers()
        else:
            self.redis.start(preexec_fn=_die_with_parent)
            self.redis_url = self.redis.url
        env = {settings.REDIS_URL_ENV: self.redis_url}
        if self.simulator:
            from vpsweb.local.simulator_process import start_simulator_process

            proc, self.simulator_url = start_simulator_process(
                extra_args=self.simulator_args, preexec_fn=_die_with_parent
            )
            self._procs.append(proc)
            env[settings.SIMULATOR_URL_ENV] = self.simulator_url
        worker = start_worker(
            self.redis_url,
            env=env,
            concurrency=self.concurrency,
            log_path=self._logdir / "worker.log",
            preexec_fn=_die_with_parent,
        )
        self._procs.append(worker)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    def _running(self) -> list[subprocess.Popen[bytes]]:
        servers = [self.redis, self.store.server if self.store else None]
        return self._procs + [s.proc for s in servers if s is not None and s.proc is not None]

    def close(self) -> None:
        """Stop everything this cluster started. A Ctrl-C while stopping leaves nothing
        behind either: what is left is stopped at once, and the interrupt is raised
        afterwards."""
        interrupted: BaseException | None = None
        stops: list[Callable[[], None]] = [
            functools.partial(stop_process, p) for p in reversed(self._procs)
        ]
        if self.store is not None:
            stops.append(self.store.stop)
        stops.append(self.redis.stop)
        for stop in stops:
            try:
                stop()
            except KeyboardInterrupt as exc:
                interrupted = exc
                for proc in self._running():  # no more waiting for a warm shutdown
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        self._procs.clear()
        if isinstance(self._old_sigterm, int) or callable(self._old_sigterm):
            signal.signal(signal.SIGTERM, self._old_sigterm)
        if interrupted is not None:
            raise interrupted

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
