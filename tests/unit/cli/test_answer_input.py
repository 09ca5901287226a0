"""The answer reader of `vpsweb manual`: it watches whether the prompt is still wanted."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator

import pytest

from vpsweb.cli.answer_input import AnsweredElsewhere, AnswerReader


@pytest.fixture()
def pipe() -> Iterator[tuple[io.TextIOWrapper, int]]:
    r, w = os.pipe()
    stream = io.TextIOWrapper(io.FileIO(r, "r"), encoding="utf-8")
    yield stream, w
    stream.close()
    with contextlib.suppress(OSError):
        os.close(w)


def test_input_read_past_one_answer_is_kept_for_the_next(
    pipe: tuple[io.TextIOWrapper, int],
) -> None:
    stream, w = pipe
    os.write(w, "雾来了\n.\nsecond\nanswer\n.\nlast".encode())
    os.close(w)
    reader = AnswerReader(stream, poll_s=0.05)
    assert reader.read(lambda: True) == "雾来了"
    assert reader.read(lambda: True) == "second\nanswer"
    assert reader.read(lambda: True) == "last"  # the end of input ends an answer
    assert reader.read(lambda: True) is None


def test_a_prompt_answered_elsewhere_stops_the_wait(pipe: tuple[io.TextIOWrapper, int]) -> None:
    stream, w = pipe
    os.write(w, b"half of it\n")
    reader = AnswerReader(stream, poll_s=0.05)
    started = time.monotonic()
    with pytest.raises(AnsweredElsewhere):
        reader.read(lambda: time.monotonic() - started < 0.2)
    assert time.monotonic() - started < 2
    os.write(w, b"the next one\n.\n")  # a pipe keeps what follows for the next prompt
    assert reader.read(lambda: True) == "the next one"


def test_a_stream_without_a_descriptor_is_read_as_before() -> None:
    reader = AnswerReader(io.StringIO("a\n.\nb\n"))
    assert reader.read(lambda: False) == "a"  # no descriptor to wait on: plain reads
    assert reader.read(lambda: False) == "b"
