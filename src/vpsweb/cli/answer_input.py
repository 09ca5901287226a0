"""Reading a pasted answer while watching whether it is still wanted.

A manual job's prompt can be answered from anywhere: another `vpsweb manual`, a
`vpsweb manual --key`, the web page. A plain blocking read of standard input would
keep asking a person for an answer nobody needs any more. So on POSIX the reader
waits on the descriptor with select() and a short timeout, asks between waits
whether the prompt is still pending, and gives up on it (AnsweredElsewhere) when it
is not. It reads the descriptor itself, because Python's buffered reader would hold
input that select() cannot see; what it read past one answer is kept for the next.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import time
from collections.abc import Callable
from typing import TextIO

from vpsweb.errors import VpswebError

END = "."


class AnsweredElsewhere(VpswebError):
    """The prompt being read for is no longer pending: somebody answered it elsewhere."""


def read_answer(stream: TextIO) -> str | None:
    """Lines up to one holding only "." (or the end of input); None if nothing came."""
    lines: list[str] = []
    for line in stream:
        if line.rstrip("\r\n") == END:
            break
        lines.append(line)
    text = "".join(lines).strip()
    return text or None


def _selectable(stream: TextIO) -> int | None:
    if os.name != "posix":
        return None
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.StringIO and the like
        return None


class AnswerReader:
    """Answers from one stream, read as ``read_answer`` does, watching a condition."""

    def __init__(self, stream: TextIO, poll_s: float = 1.0) -> None:
        self.stream = stream
        self.poll_s = poll_s
        self._fd = _selectable(stream)
        self._text = ""  # read from the descriptor, not yet handed out
        self._eof = False
        self._decoder = codecs.getincrementaldecoder(stream.encoding or "utf-8")("replace")

    def read(self, still_wanted: Callable[[], bool] | None = None) -> str | None:
        """One answer (None at the end of input); AnsweredElsewhere once
        ``still_wanted()`` says no, checked about every ``poll_s`` seconds."""
        if self._fd is None or still_wanted is None:
            return read_answer(self.stream)
        lines: list[str] = []
        while (line := self._line(still_wanted)) is not None:
            if line.rstrip("\r\n") == END:
                break
            lines.append(line)
        text = "".join(lines).strip()
        return text or None

    def _line(self, still_wanted: Callable[[], bool]) -> str | None:
        assert self._fd is not None
        checked = time.monotonic()
        while "\n" not in self._text and not self._eof:
            if time.monotonic() - checked >= self.poll_s:
                if not still_wanted():
                    self._drop_typed()
                    raise AnsweredElsewhere
                checked = time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], self.poll_s)
            if ready:
                chunk = os.read(self._fd, 65536)
                self._eof = not chunk
                self._text += self._decoder.decode(chunk, final=not chunk)
        line, newline, self._text = self._text.partition("\n")
        return line + newline if line or newline else None

    def _drop_typed(self) -> None:
        """On a terminal, what was typed for the abandoned prompt is discarded (also
        what sits unsent in the line editor); piped input is kept for the next."""
        if not os.isatty(self._fd or 0):
            return
        import termios  # POSIX only, as is this reader

        self._text = ""
        with contextlib.suppress(termios.error, OSError):
            termios.tcflush(self._fd or 0, termios.TCIFLUSH)


_readers: dict[int, AnswerReader] = {}


def reader_for(stream: TextIO) -> AnswerReader:
    """One reader per stream, so that input read past an answer is not lost."""
    found = _readers.get(id(stream))
    if found is None or found.stream is not stream:
        found = _readers[id(stream)] = AnswerReader(stream)
    return found
