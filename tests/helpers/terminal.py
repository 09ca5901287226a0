"""Run the `vpsweb` command in a pseudo-terminal and see what a user would see.

The child gets its own session with the PTY as controlling terminal, so a Ctrl-C
typed at the terminal (``interrupt``) reaches it exactly as it would from a shell;
a real terminal emulator (pyte) turns the byte stream into screen lines.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable

import pyte

from tests.helpers.cli import cli_env
from tests.helpers.config import REPO


class Terminal:
    def __init__(
        self, *args: str, columns: int = 80, rows: int = 40, env: dict[str, str] | None = None
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        # A typed Ctrl-C makes the tty discard the output it has not handed to the reader
        # yet (no NOFLSH): what the program printed just before would vanish from the
        # test's view, though the program wrote it (a loaded machine reads late).
        attrs = termios.tcgetattr(slave)
        attrs[3] |= termios.NOFLSH
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        environment = cli_env({"TERM": "xterm-256color", **(env or {})}, unset=("COLUMNS",))

        def controlling_terminal() -> None:  # runs in the child
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vpsweb.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=controlling_terminal,
            env=environment,
            cwd=REPO,
            close_fds=True,
        )
        os.close(slave)
        self.screen = pyte.HistoryScreen(columns, rows, history=2000)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""

    def _pump(self, wait_s: float) -> bool:
        """Read what is there; False once the child closed the terminal."""
        ready, _, _ = select.select([self.master], [], [], wait_s)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every writer has gone
            return False
        if not data:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def wait_for(self, seen: Callable[[str], bool], timeout: float) -> str:
        """Read until ``seen(text so far)``; the text (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if seen(text):
                return text
            if not self._pump(0.1) and not seen(self.text()):
                break
        raise AssertionError(f"not seen within {timeout}s; the terminal shows:\n{self.text()}")

    def interrupt(self) -> None:
        """Type Ctrl-C."""
        os.write(self.master, b"\x03")

    def write(self, text: str) -> None:
        """Type ``text`` (a newline is Enter)."""
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self._pump(0.1) and time.monotonic() < deadline:
            pass
        code = self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self.master)
        return code

    def text(self) -> str:
        """Everything decoded so far (escape sequences included)."""
        return self.raw.decode(errors="replace")

    def lines(self) -> list[str]:
        """The screen as the user sees it, scrolled-off lines first, right-trimmed."""
        history = [
            "".join(line[x].data for x in range(self.screen.columns)).rstrip()
            for line in self.screen.history.top
        ]
        shown = [line.rstrip() for line in self.screen.display]
        return [line for line in history + shown if line]
