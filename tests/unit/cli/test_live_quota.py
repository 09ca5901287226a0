"""A call waiting for its provider's quota in the CLI's displays: the live view shows
the wait (symbol, words, color) where the stage's model goes and on the candidate's
row; plain lines say each wait and its end once."""

from __future__ import annotations

import io

from rich.console import Console

from vpsweb.cli.live import LiveView, PlainView, follow
from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.view import JobView

FAN_OUT = "Initial Translation"
WAIT = "candidate-1: waiting for deepseek quota (12 ahead; requests)"
GOT = "candidate-1: got deepseek quota after 3.2s"


def state(n: int = 2) -> JobView:
    request = {"poem": "The fog comes", "source_lang": "en", "target_lang": "zh-CN"}
    plan = build_plan({**request, "parallel_count": n}, load_config(), job_id="0123456789ab")
    return JobView.of("0123456789ab", plan)


def ev(kind: EventKind, **fields: object) -> ProgressEvent:
    return ProgressEvent.model_validate({"event": kind, **fields})


def quota(message: str, *, waiting: bool = True) -> ProgressEvent:
    status = "waiting" if waiting else "running"
    fields = {"stage": FAN_OUT, "status": status, "key": "candidate-1", "ts": 11.0}
    return ev(EventKind.WAITING_FOR_QUOTA, message=message, **fields)


def started() -> ProgressEvent:
    return ev(EventKind.STAGE_STARTED, stage=FAN_OUT, model="deepseek-chat", ts=10.0)


def render(s: JobView, *, color: bool = False) -> str:
    console = Console(file=io.StringIO(), width=200, color_system="standard" if color else None)
    console.print(LiveView(s, console).render())
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_live_view_shows_the_wait_in_words_and_color() -> None:
    s = state()
    for e in (started(), quota(WAIT)):
        s.apply(e)
    shown = render(s)
    assert "⧖ Initial Translation" in shown and WAIT in shown  # the stage's row
    assert "#1" in shown and "⧖ waiting for deepseek quota (12 ahead; requests)" in shown
    assert "failed" not in shown
    assert "\x1b[34m" in render(s, color=True)  # blue: extra to the words

    s.apply(quota(GOT, waiting=False))
    shown = render(s)
    assert "waiting for deepseek quota" not in shown and "⧖" not in shown


def test_plain_lines_say_the_wait_and_its_end_once() -> None:
    s = state()
    out = io.StringIO()
    events = [started(), quota(WAIT), quota(WAIT), quota(GOT, waiting=False)]
    follow(iter(events), s, out, live=False)
    assert out.getvalue().splitlines() == [
        "[  0.0%] Initial Translation started (deepseek-chat)",
        f"[  0.0%]   ⧖ {WAIT}",
        f"[  0.0%]   … {GOT}",
    ]


def test_a_second_wait_of_the_same_step_is_said_again() -> None:
    s = state()
    view = PlainView(s, io.StringIO())
    lines = [view.line(e) for e in (quota(WAIT), quota(GOT, waiting=False), quota(WAIT))]
    assert lines == [f"  ⧖ {WAIT}", f"  … {GOT}", f"  ⧖ {WAIT}"]
