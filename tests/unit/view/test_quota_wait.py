"""A call waiting for its provider's quota, as the view model says it: the stage (and
the candidate, for a candidate's call) waits for quota with the wait's own words,
returns to running when the permit comes, and later events replace it as usual. A
wait is never a failure."""

from __future__ import annotations

from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.view import JobView
from vpsweb.view.marks import candidate_label, stage_label

FAN_OUT = "Initial Translation"
JUDGE = "Translation Evaluation"


def view(n: int = 3) -> JobView:
    request = {"poem": "The fog comes", "source_lang": "en", "target_lang": "zh-CN"}
    plan = build_plan({**request, "parallel_count": n}, load_config(), job_id="0123456789ab")
    state = JobView.of("0123456789ab", plan)
    state.apply(ProgressEvent(event=EventKind.STAGE_STARTED, stage=FAN_OUT, model="m", ts=1.0))
    return state


def quota(key: str, said: str, *, stage: str = FAN_OUT, waiting: bool = True) -> ProgressEvent:
    return ProgressEvent(
        event=EventKind.WAITING_FOR_QUOTA,
        stage=stage,
        status="waiting" if waiting else "running",
        key=key,
        message=f"{key}: {said}",
        ts=2.0,
    )


WAIT = "waiting for deepseek quota (12 ahead; requests)"
GOT = "got deepseek quota after 3.2s"


def test_the_labels_say_it_in_words_with_their_own_symbol() -> None:
    assert stage_label("waiting_for_quota") == "⧖ waiting for quota"
    assert candidate_label("waiting_for_quota") == "⧖ waiting for quota"
    assert candidate_label("waiting_for_quota", WAIT) == f"⧖ {WAIT}"


def test_a_candidate_waits_for_quota_then_runs_again() -> None:
    state = view()
    state.apply(quota("candidate-1", WAIT))
    row, stage = state.candidate(1), state.stage(FAN_OUT)
    assert row is not None and stage is not None
    assert (row.status, row.label, row.css) == (
        "waiting_for_quota",
        f"⧖ {WAIT}",
        "waiting-for-quota",
    )
    assert (stage.status, stage.label, stage.css) == (
        "waiting_for_quota",
        "⧖ waiting for quota",
        "waiting-for-quota",
    )
    assert stage.message == f"candidate-1: {WAIT}"
    assert state.status == "running" and not state.ended_job
    assert state.status_text == f"{FAN_OUT}: candidate-1: {WAIT}"
    other = state.candidate(0)
    assert other is not None and other.status == "running"  # only the waiting one

    state.apply(quota("candidate-1", GOT, waiting=False))
    assert (row.status, row.cause, row.label) == ("running", "", "… running")
    assert (stage.status, stage.message) == ("running", f"candidate-1: {GOT}")
    assert state.status_text == f"Running: {FAN_OUT}"


def test_the_stage_waits_while_any_of_its_candidates_does() -> None:
    state = view()
    state.apply(quota("candidate-0", WAIT))
    state.apply(quota("candidate-2", "waiting for deepseek quota (3 ahead; tokens)"))
    state.apply(quota("candidate-0", GOT, waiting=False))
    stage = state.stage(FAN_OUT)
    assert stage is not None and stage.status == "waiting_for_quota"
    assert stage.message == "candidate-2: waiting for deepseek quota (3 ahead; tokens)"
    state.apply(quota("candidate-2", GOT, waiting=False))
    assert stage.status == "running"


def test_later_events_replace_the_wait() -> None:
    state = view(2)
    state.apply(quota("candidate-0", WAIT))
    state.apply(
        ProgressEvent(
            event=EventKind.CANDIDATE_FINISHED,
            stage=FAN_OUT,
            status="succeeded",
            index=0,
            parallel_progress="1/2 completed",
            ts=5.0,
            duration_s=4.0,
        )
    )
    row = state.candidate(0)
    assert row is not None and (row.status, row.cause) == ("succeeded", "")
    # A late permit after the candidate ended changes nothing.
    state.apply(quota("candidate-0", GOT, waiting=False))
    assert row.status == "succeeded"
    state.apply(ProgressEvent(event=EventKind.STAGE_COMPLETED, stage=FAN_OUT, ts=6.0))
    state.apply(quota("candidate-1", WAIT))  # a straggler's wait: the stage has ended
    stage = state.stage(FAN_OUT)
    assert stage is not None and stage.status == "completed"


def test_a_single_step_waits_and_its_completion_replaces_it() -> None:
    state = view(1)
    state.apply(ProgressEvent(event=EventKind.STAGE_STARTED, stage=JUDGE, model="j", ts=3.0))
    state.apply(quota("evaluation", WAIT, stage=JUDGE))
    judge = state.stage(JUDGE)
    assert judge is not None and judge.status == "waiting_for_quota"
    assert judge.message == f"evaluation: {WAIT}"
    assert all(c.status != "waiting_for_quota" for c in state.candidates)
    state.apply(ProgressEvent(event=EventKind.STAGE_COMPLETED, stage=JUDGE, message="ok", ts=9.0))
    assert (judge.status, judge.message) == ("completed", "ok")


def test_the_page_gets_the_status_label_and_class() -> None:
    state = view(2)
    state.apply(quota("candidate-1", WAIT))
    data = state.model_dump(mode="json")
    stage = next(s for s in data["stages"] if s["name"] == FAN_OUT)
    assert (stage["css"], stage["label"]) == ("waiting-for-quota", "⧖ waiting for quota")
    cand = next(c for c in data["candidates"] if c["index"] == 1)
    assert (cand["css"], cand["label"]) == ("waiting-for-quota", f"⧖ {WAIT}")
    assert data["status"] == "running" and not data["ended_job"] and not data["result_ready"]
