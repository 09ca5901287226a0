"""Start the simulator as a child process and wait until it answers."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from vpsweb.workers.processes import free_port, stop_process


def start_simulator_process(
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout_s: float = 15.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Returns the process and its base URL (http://127.0.0.1:PORT/v1) once it serves."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "vpsweb.llm.simulator", "--port", str(port), *extra_args]
    # stderr goes to a file, not a pipe: an unread pipe would block a chatty child.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed once the child serves
    proc = subprocess.Popen(
        cmd,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        preexec_fn=preexec_fn,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(base + "/models", timeout=1):
                errors.close()
                return proc, base
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                errors.seek(0)
                err = errors.read().decode(errors="replace")
                raise RuntimeError(f"simulator exited ({proc.returncode}): {err}") from None
            if time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError(
                    f"simulator did not answer on {base} in {timeout_s:g}s"
                ) from None
            time.sleep(0.05)
