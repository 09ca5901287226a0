"""What the CLI makes of a job's events: the view model (vpsweb.view) drawn by the live
and plain displays."""

from __future__ import annotations

import io

from rich.console import Console

from vpsweb.cli.live import LiveView, PlainView, follow, why_failed
from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.view import JobView as JobState

CAUSE = "no API key for model 'deepseek-chat': set DEEPSEEK_API_KEY"


def plan(n: int = 4):
    request = {
        "poem": "The fog comes",
        "source_lang": "en",
        "target_lang": "zh-CN",
        "parallel_count": n,
    }
    return build_plan(request, load_config(), job_id="0123456789ab")


def ev(kind: EventKind, **fields) -> ProgressEvent:
    return ProgressEvent(event=kind, **fields)


def finished(index: int, k: int, n: int, *, error: str = "", ts: float = 100.0) -> ProgressEvent:
    return ev(
        EventKind.CANDIDATE_FINISHED,
        stage="Initial Translation",
        status="failed" if error else "succeeded",
        index=index,
        parallel_progress=f"{k}/{n} completed",
        error=error,
        ts=ts,
        duration_s=1.5,
        model="deepseek-chat",
    )


def test_every_candidate_moves_the_bar_which_never_goes_back() -> None:
    state = JobState.of("0123456789ab", plan(4))
    seen = []
    for k in range(1, 5):
        state.apply(finished(k - 1, k, 4))
        seen.append(state.percent)
    assert seen == sorted(seen) and len(set(seen)) == 4  # 1/4 shows, not only milestones
    assert seen[-1] == state.fan_out_span[1]
    state.apply(ev(EventKind.MILESTONE, progress_percent=10.0))  # an older, lower value
    assert state.percent == seen[-1]


def test_one_cause_per_failed_candidate_said_once() -> None:
    state = JobState.of("0123456789ab", plan(3))
    out = io.StringIO()
    view = PlainView(state, out)
    for k, index in enumerate((1, 0, 2), start=1):
        event = finished(index, k, 3, error=CAUSE)
        state.apply(event)
        view.show(event)
    lines = out.getvalue().splitlines()
    assert sum(CAUSE in line for line in lines) == 1
    assert lines[1].endswith("✗ candidate 0 (, deepseek-chat) failed in 1.5s: same cause as #1")
    assert state.causes_shown()
    assert why_failed(state, "Initial Translation", "x") == (
        "no candidate succeeded (the cause of each is shown above)"
    )
    assert why_failed(state, "Editor Review", "timeout") == "timeout"


def test_a_failed_milestone_marks_the_stage_failed() -> None:
    state = JobState.of("0123456789ab", plan(2))
    state.apply(ev(EventKind.MILESTONE, stage="Initial Translation", status="failed"))
    stage = state.stage("Initial Translation")
    assert stage is not None and stage.status == "failed"


def test_warnings_come_and_go() -> None:
    state = JobState.of("0123456789ab", plan(2))
    state.apply(ev(EventKind.WARNING, message="no worker"))
    state.apply(ev(EventKind.WARNING, message="no worker"))
    assert state.notices == ["no worker"]
    state.apply(ev(EventKind.WARNING, message="no worker", status="resolved"))
    assert state.notices == []


def test_plain_follow_writes_one_line_per_event_and_returns_the_last() -> None:
    state = JobState.of("0123456789ab", plan(1))
    out = io.StringIO()
    events = [
        ev(EventKind.JOB_QUEUED, ts=10.0),
        ev(EventKind.STAGE_STARTED, stage="Initial Translation", model="m", ts=10.5),
        finished(0, 1, 1, ts=12.0),
        ev(
            EventKind.STAGE_COMPLETED,
            stage="Initial Translation",
            ts=12.0,
            message="Initial Translation completed",
        ),
        ev(EventKind.JOB_FINISHED, status="succeeded", progress_percent=100.0, ts=14.0),
    ]
    last = follow(iter(events), state, out, live=False)
    assert last is events[-1]
    lines = out.getvalue().splitlines()
    assert lines == [
        "[  0.0%] Initial Translation started (m)",
        "[ 25.0%]   ✓ candidate 0 (, deepseek-chat) succeeded in 1.5s",
        "[ 25.0%] Initial Translation completed in 1.5s",
        "[100.0%] job succeeded after 4.0s",
    ]


def late_gated_failed() -> list[ProgressEvent]:
    """Four candidates: 0 succeeds and is chosen, 1 fails, 2 is gated, 3 is late."""
    late = finished(3, 4, 4, ts=104.0).model_copy(update={"status": "late"})
    return [
        ev(EventKind.JOB_QUEUED, ts=100.0),
        ev(EventKind.STAGE_STARTED, stage="Initial Translation", model="m", ts=100.5),
        finished(0, 1, 4, ts=101.0),
        finished(1, 2, 4, ts=102.0, error="HTTP 500 from the provider"),
        finished(2, 3, 4, ts=103.0),
        late,
        ev(
            EventKind.STAGE_COMPLETED,
            stage="Translation Evaluation",
            message="selected candidate 0 (judge), 1 gated",
            gated={2: "copies the source"},
            ts=105.0,
        ),
    ]


def test_plain_lines_tell_late_gated_and_failed_apart() -> None:
    state = JobState.of("0123456789ab", plan(4))
    out = io.StringIO()
    follow(iter(late_gated_failed()), state, out, live=False)
    text = out.getvalue()
    assert "✓ candidate 0 (, deepseek-chat) succeeded in 1.5s" in text
    assert "✗ candidate 1 (, deepseek-chat) failed in 1.5s: HTTP 500 from the provider" in text
    assert "⏱ candidate 3 (, deepseek-chat) late in 1.5s (stopped: quorum reached)" in text
    assert "⊘ candidate 2 gated: copies the source" in text


def test_the_live_view_labels_each_candidate_with_symbol_and_words() -> None:
    state = JobState.of("0123456789ab", plan(4))
    for event in late_gated_failed():
        state.apply(event)
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(LiveView(state, console).render())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "⏱ late (stopped: quorum reached)" in shown
    assert "⊘ gated: copies the source" in shown
    assert "✗ failed: HTTP 500 from the provider" in shown
    assert "#2: ⊘ gated: copies the source" in shown  # the full cause, below the rows
