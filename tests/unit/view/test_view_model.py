"""The view model (vpsweb.view) from event sequences and from a result: one place that
decides a candidate's status (waiting, running, succeeded, late, gated, failed) and
says it with a symbol and words, for the CLI and the web page alike."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from tests.helpers.poems import FOG_COUPLET as POEM
from vpsweb.cli.report import print_result
from vpsweb.config import load_config
from vpsweb.domain.models import (
    CandidateResult,
    CandidateScore,
    EditorReview,
    EvaluationResult,
    FinalTranslation,
    GateResult,
    Revision,
    RevisionCheck,
    StrategyDials,
    WorkflowMode,
)
from vpsweb.domain.plan import build_plan, validate_request
from vpsweb.domain.progress import EventKind, ProgressEvent, gated_field
from vpsweb.domain.result import TranslationOutput
from vpsweb.view import JobView, ResultView
from vpsweb.view.marks import candidate_label

JUDGE_DOWN = "the judge gave no verdict in any of 2 order(s) (HTTP 429)"


def plan(n: int = 4):
    request = {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN", "parallel_count": n}
    return build_plan(request, load_config(), job_id="0123456789ab")


def ev(kind: EventKind, **fields) -> ProgressEvent:
    return ProgressEvent(event=kind, **fields)


def done(index: int, k: int, n: int, status: str = "succeeded", error: str = "") -> ProgressEvent:
    return ev(
        EventKind.CANDIDATE_FINISHED,
        stage="Initial Translation",
        status=status,
        index=index,
        parallel_progress=f"{k}/{n} completed",
        error=error,
        ts=100.0 + k,
        duration_s=1.0,
        model="deepseek-chat",
    )


def a_job() -> list[ProgressEvent]:
    """0 succeeds, 1 fails, 2 is gated at the evaluation, 3 is late; the judge is down."""
    return [
        ev(EventKind.JOB_QUEUED, ts=100.0),
        ev(EventKind.STAGE_STARTED, stage="Initial Translation", model="m", ts=100.5),
        done(0, 1, 4),
        done(1, 2, 4, "failed", "HTTP 500 from the provider"),
        done(2, 3, 4),
        done(3, 4, 4, "late"),
        ev(EventKind.STAGE_STARTED, stage="Translation Evaluation", progress_percent=25.0),
        ev(
            EventKind.STAGE_COMPLETED,
            stage="Translation Evaluation",
            progress_percent=35.0,
            message="selected candidate 0 by line count: the judge gave no verdict, 1 gated",
            warning=JUDGE_DOWN,
            gated={2: "copies the source"},
        ),
    ]


def view_of(events: list[ProgressEvent], n: int = 4) -> JobView:
    view = JobView.of("0123456789ab", plan(n))
    for e in events:
        view.apply(e)
    return view


def test_each_candidate_status_has_its_own_symbol_words_and_cause() -> None:
    view = view_of(a_job())
    rows = {c.index: c for c in view.candidates}
    assert [rows[i].status for i in range(4)] == ["succeeded", "failed", "gated", "late"]
    assert rows[0].label == "✓ succeeded"
    assert rows[1].label == "✗ failed: HTTP 500 from the provider"
    assert rows[2].label == "⊘ gated: copies the source"
    assert rows[3].label == "⏱ late (stopped: quorum reached)"
    assert len({r.css for r in rows.values()}) == 4  # four looks, not two
    assert view.warnings == [JUDGE_DOWN]
    stage = view.stage("Translation Evaluation")
    assert stage is not None and stage.status == "completed" and stage.label == "✓ completed"


def test_running_then_waiting_rows_before_the_first_event() -> None:
    view = view_of([])
    assert {c.label for c in view.candidates} == {"· waiting"}
    view.apply(ev(EventKind.STAGE_STARTED, stage="Initial Translation", ts=1.0))
    assert {c.status for c in view.candidates} == {"running"}
    assert view.status == "running" and view.status_text == "Running: Initial Translation"


def test_the_bar_never_moves_back_under_out_of_order_milestones() -> None:
    view = view_of([], n=6)
    seen = []
    for e in [
        done(0, 1, 6),
        done(1, 3, 6),  # a later count arrives first
        done(2, 2, 6),
        ev(EventKind.MILESTONE, progress_percent=5.0, parallel_progress="2/6 completed"),
        ev(EventKind.MILESTONE, progress_percent=12.0),
        ev(EventKind.MILESTONE, progress_percent=8.0),
        ev(EventKind.STAGE_COMPLETED, stage="Editor Review", progress_percent=60.0),
        ev(EventKind.STAGE_STARTED, stage="Translation Evaluation", progress_percent=30.0),
    ]:
        view.apply(e)
        seen.append(view.percent)
    assert seen == sorted(seen) and seen[-1] == 60.0


def test_a_candidate_failing_like_another_points_at_it() -> None:
    view = view_of([done(0, 1, 2, "failed", "no key"), done(1, 2, 2, "failed", "no key")], n=2)
    assert [c.same_as for c in view.candidates] == [None, 0]
    assert view.causes_shown()


def test_the_no_worker_notice_comes_and_goes_while_warnings_stay() -> None:
    view = view_of(a_job())
    view.apply(ev(EventKind.WARNING, message="no worker is consuming queue 'vpsweb'"))
    assert view.notices == ["no worker is consuming queue 'vpsweb'"]
    view.apply(ev(EventKind.WARNING, message="no worker is consuming queue 'vpsweb'"))
    assert len(view.notices) == 1
    view.apply(
        ev(EventKind.WARNING, message="no worker is consuming queue 'vpsweb'", status="resolved")
    )
    assert view.notices == [] and view.warnings == [JUDGE_DOWN]


def test_the_end_of_a_job_says_how_it_ended() -> None:
    view = view_of(a_job())
    view.apply(ev(EventKind.JOB_FINISHED, status="failed", error="boom", ts=200.0))
    assert view.ended_job and not view.result_ready
    assert view.status_text == "Job failed: boom"
    view = view_of(a_job())
    view.apply(ev(EventKind.JOB_FINISHED, status="succeeded", progress_percent=100.0, ts=9.0))
    assert view.result_ready and view.percent == 100.0


def test_the_view_as_json_carries_what_the_page_draws() -> None:
    data = json.loads(view_of(a_job()).model_dump_json())
    row = data["candidates"][3]
    assert row["label"] == "⏱ late (stopped: quorum reached)" and row["css"] == "late"
    assert row["time"] == "1.0s"
    assert {"percent", "status_text", "stages", "warnings", "notices", "ended_job"} <= set(data)


def test_gated_candidates_ride_the_stream_as_json_and_come_back() -> None:
    evaluation = EvaluationResult(
        selected_index=0,
        rationale="",
        method="judge",
        gated=[GateResult(index=2, reasons=["copies the source", "wrong script"])],
    )
    stored = gated_field(evaluation)
    assert gated_field(EvaluationResult(selected_index=0, rationale="", method="judge")) == ""
    event = ProgressEvent.from_fields(
        "1-0", {"event": "stage_completed", "stage": "Translation Evaluation", "gated": stored}
    )
    assert event.gated == {2: "copies the source; wrong script"}


def output() -> TranslationOutput:
    request = validate_request(
        {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN", "title": "Fog"}, load_config()
    )
    cands = [
        CandidateResult(index=0, variant="literal", status="succeeded", translation="雾来了"),
        CandidateResult(index=1, variant="lyric", status="failed", error="HTTP 500"),
        CandidateResult(index=2, variant="free", status="succeeded", translation="The fog"),
        CandidateResult(index=3, variant="slowpoke", status="late", error="late: stopped"),
    ]
    return TranslationOutput(
        job_id="0123456789ab",
        request=request,
        workflow_mode=WorkflowMode.HYBRID,
        parallel_count=4,
        strategy=StrategyDials(),
        candidates=cands,
        evaluation=EvaluationResult(
            selected_index=0,
            rationale=" Closest. ",
            method="judge",
            presented_order=[0],
            scores=[CandidateScore(index=0, scores={"fidelity": 8.0}, total=8.0)],
            gated=[GateResult(index=2, reasons=["copies the source"])],
        ),
        selected_candidate=cands[0],
        editor_review=EditorReview(suggestions="1. [L1] keep it"),
        revision=Revision(translation="雾来了。"),
        revision_check=RevisionCheck(decision="revision_kept", reason="better"),
        final=FinalTranslation(translation="雾来了。", source="revision", candidate_index=0),
        created_at=datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC),
        finished_at=datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC),
    )


def test_the_result_view_says_each_candidate_as_the_live_view_does() -> None:
    view = ResultView.of(output())
    labels = [c.label for c in view.candidates]
    assert labels == [
        candidate_label("succeeded"),
        "✗ failed: HTTP 500",
        "⊘ gated: copies the source",
        "⏱ late (stopped: quorum reached)",
    ]
    assert view.chosen.index == 0 and view.chosen.scores == "fidelity 8 (total 8)"
    assert view.candidates[2].translation == "The fog"  # gated, yet its text is shown
    assert view.failed == 1 and view.judge.rationale == "Closest."
    assert view.final_which == "the revision" and view.revision_not_kept == ""
    assert view.lines[0] == ("The fog comes", "雾来了。")


def test_the_cli_report_draws_the_result_view() -> None:
    out = io.StringIO()
    print_result(output(), out)
    text = out.getvalue()
    assert "Chosen candidate: #0 (literal), method judge, of 4 (1 failed)" in text
    assert "  #0 literal: ✓ succeeded  <- chosen" in text
    assert "  #1 lyric: ✗ failed: HTTP 500" in text
    assert "  #2 free: ⊘ gated: copies the source" in text
    assert "  #3 slowpoke: ⏱ late (stopped: quorum reached)" in text
    assert "Final translation (the revision):" in text
