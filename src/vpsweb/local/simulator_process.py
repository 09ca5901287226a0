"""Start the simulator as a child process and wait until it answers.

A child process rather than an in-process server: tests, benchmarks and embedded
mode then exercise the same HTTP path as a real provider, and the simulator's
event loop never competes with the caller's for the GIL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from vpsweb.local.processes import free_port, stop_process

# Loopback only: an http_proxy in the environment must not see the readiness probe.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_BIND_FAILED = "cannot listen on"


def start_simulator_process(
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout_s: float = 15.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Returns the process and its base URL (http://127.0.0.1:PORT/v1) once it serves.

    ``env`` is laid over this process's environment (VPSWEB_SIM_* options, say).
    With ``port=None`` a free port is picked; if another process takes it before the
    child binds, a fresh one is tried (twice more).
    """
    attempts = 1 if port else 3
    for attempt in range(attempts):
        try:
            return _start(port or free_port(), extra_args, env, preexec_fn, timeout_s)
        except _PortTaken:
            if attempt + 1 == attempts:
                raise RuntimeError("simulator could not bind a free port") from None
    raise AssertionError("unreachable")


class _PortTaken(Exception):
    pass


def _start(
    port: int,
    extra_args: Sequence[str],
    env: dict[str, str] | None,
    preexec_fn: Callable[[], None] | None,
    timeout_s: float,
) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [sys.executable, "-m", "vpsweb.simulator", "--port", str(port), *extra_args]
    # stderr goes to a file, not a pipe: an unread pipe would block a chatty child.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed once the child serves
    proc = subprocess.Popen(
        cmd,
        env=None if env is None else {**os.environ, **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        preexec_fn=preexec_fn,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                with _DIRECT.open(base + "/models", timeout=1):
                    pass
                # Something answered; make sure it is our child, not an older server.
                if proc.poll() is None:
                    return proc, base
                raise OSError("the child exited")
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None:
                    errors.seek(0)
                    err = errors.read().decode(errors="replace")
                    if _BIND_FAILED in err:
                        raise _PortTaken from None
                    raise RuntimeError(
                        f"simulator exited ({proc.returncode}): {err.strip()}"
                    ) from None
                if time.monotonic() > deadline:
                    stop_process(proc)
                    raise RuntimeError(
                        f"simulator did not answer on {base} in {timeout_s:g}s"
                    ) from None
                time.sleep(0.05)
    finally:
        errors.close()
