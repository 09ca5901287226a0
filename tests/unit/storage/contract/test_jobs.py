"""The registry: creating, ending once and atomically, cancelling, deadlines and the
sweeper's selection, submissions, and retention."""

from __future__ import annotations

import json

from tests.helpers.storage_backends import Backend, stream_events
from vpsweb.domain.progress import EventKind
from vpsweb.domain.request import Priority
from vpsweb.orchestrator.lifecycle import cancel_job, fail_job
from vpsweb.orchestrator.sweeper import Sweeper
from vpsweb.stages.table import STAGES
from vpsweb.storage import Event, JobStatus
from vpsweb.storage.base import CandidateEnd

TTL = 600
FINISHED = Event(EventKind.JOB_FINISHED, 100, {"status": "succeeded"})


def test_a_created_job_is_queued_with_an_event_a_deadline_and_a_submission(store: Backend) -> None:
    plan = store.job("0000000000a1")
    jobs = store.storage.jobs
    record = jobs.get(plan.job_id)
    assert record is not None and record.status is JobStatus.QUEUED and record.plan == plan
    assert jobs.plan(plan.job_id) == plan and jobs.status(plan.job_id) is JobStatus.QUEUED
    assert jobs.get("unknown") is None and jobs.status("unknown") is None
    assert jobs.plan("unknown") is None
    expected = plan.deadline_after(STAGES[0].name, plan.created_at.timestamp())
    assert jobs.deadline(plan.job_id) == round(expected, 3)
    [queued] = stream_events(store, plan.job_id)
    assert queued.event is EventKind.JOB_QUEUED and queued.progress_percent == 0
    assert [s.job_id for s in jobs.next_submissions("d", block_ms=10, count=10)] == [plan.job_id]
    store.job("0000000000a2")
    assert jobs.recent_jobs(limit=1) == ["0000000000a2"]


def test_interactive_submissions_are_taken_before_batch_ones_sent_earlier(store: Backend) -> None:
    jobs = store.storage.jobs
    batch = [store.job(f"ba7c4000{i:04d}", priority=Priority.BATCH).job_id for i in range(5)]
    alone = store.job("1a7e00000001").job_id
    first = jobs.next_submissions("d", block_ms=10, count=2)
    assert [(s.job_id, s.lane) for s in first] == [
        (alone, "interactive"),
        (batch[0], "batch"),
        (batch[1], "batch"),
    ]
    jobs.ack_submissions(first)
    rest = jobs.next_submissions("d", block_ms=10, count=10)
    assert [s.job_id for s in rest] == batch[2:]
    jobs.ack_submissions(rest)
    assert jobs.next_submissions("d", block_ms=10, count=10) == []


def test_mark_running_once_keeps_the_first_start(store: Backend) -> None:
    plan = store.job()
    jobs = store.storage.jobs
    jobs.mark_running(plan.job_id, TTL)
    first = jobs.get(plan.job_id)
    assert first is not None and first.status is JobStatus.RUNNING and first.started_at
    store.advance(0.05)
    jobs.mark_running(plan.job_id, TTL)
    again = jobs.get(plan.job_id)
    assert again is not None and again.started_at == first.started_at


def test_ending_happens_once_with_one_terminal_event(store: Backend) -> None:
    plan = store.job()
    jobs, progress = store.storage.jobs, store.storage.progress
    done = jobs.end(plan.job_id, JobStatus.SUCCEEDED, TTL, events=[FINISHED], result='{"a": 1}')
    assert done
    failed = Event(EventKind.JOB_FINISHED, 100, {"status": "failed"})
    assert not jobs.end(
        plan.job_id, JobStatus.FAILED, TTL, events=[failed], result='{"a": 2}', error="late"
    )
    assert not jobs.end("unknown", JobStatus.FAILED, TTL, events=[failed])
    record = jobs.get(plan.job_id)
    assert record is not None and record.status is JobStatus.SUCCEEDED
    assert record.error is None and record.finished_at is not None
    assert json.loads(jobs.load_result(plan.job_id) or "")["a"] == 1  # the first stands
    assert not progress.emit(plan.job_id, Event(EventKind.STAGE_STARTED, 99, {}), TTL)
    end = CandidateEnd(0, ok=True, n=1, end_percent=25, stage="Initial Translation")
    assert progress.candidate_finished(plan.job_id, end, TTL) == (0, False)
    events = stream_events(store, plan.job_id)
    assert [e.event for e in events] == [EventKind.JOB_QUEUED, EventKind.JOB_FINISHED]
    assert progress.snapshot(plan.job_id).terminal
    assert jobs.overdue(1e12) == []  # an ended job has no deadline to watch


def test_end_writes_every_event_with_a_monotonic_percentage(store: Backend) -> None:
    plan = store.job()
    store.storage.progress.emit(plan.job_id, Event(EventKind.STAGE_STARTED, 60, {}), TTL)
    failing = [
        Event(EventKind.STAGE_FAILED, 40, {"stage": "Editor Review", "status": "failed"}),
        Event(EventKind.JOB_FINISHED, 0, {"status": "failed"}),
    ]
    assert store.storage.jobs.end(
        plan.job_id, JobStatus.FAILED, TTL, events=failing, error="boom", error_stage="Editor"
    )
    events = stream_events(store, plan.job_id)
    assert [e.progress_percent for e in events] == [0, 60, 60, 60]
    record = store.storage.jobs.get(plan.job_id)
    assert record is not None and (record.error, record.error_stage) == ("boom", "Editor")


def test_a_result_replaces_the_step_outputs_it_repeats(store: Backend) -> None:
    plan = store.job()
    jobs = store.storage.jobs
    jobs.save_step(plan.job_id, "editor_review", "E", TTL)
    result = json.dumps({"job_id": plan.job_id, "request": {"poem": "dropped"}})
    assert jobs.end(plan.job_id, JobStatus.SUCCEEDED, TTL, events=[FINISHED], result=result)
    assert jobs.load_step(plan.job_id, "editor_review") is None
    loaded = json.loads(jobs.load_result(plan.job_id) or "")
    assert loaded["request"] == json.loads(plan.model_dump_json())["request"]  # from the plan


def test_cancel_ends_once_and_counts_usage_once(store: Backend) -> None:
    plan = store.job()
    assert cancel_job(store.storage, plan.job_id, plan)
    assert not cancel_job(store.storage, plan.job_id, plan)
    assert not fail_job(store.storage, plan.job_id, "Editor Review", "too late")
    assert store.storage.jobs.status(plan.job_id) is JobStatus.CANCELLED
    finished = [e for e in stream_events(store, plan.job_id) if e.terminal]
    assert [e.status for e in finished] == ["cancelled"]
    assert len(store.storage.usage.summaries(0)) == 1


def test_deadlines_move_later_only_and_the_sweeper_fails_only_overdue_jobs(
    store: Backend,
) -> None:
    plan = store.job("5eee00000001")
    jobs = store.storage.jobs
    deadline = jobs.deadline(plan.job_id)
    assert deadline is not None
    jobs.extend_deadline(plan.job_id, deadline - 10)  # never earlier
    assert jobs.deadline(plan.job_id) == deadline
    a = Sweeper(storage=store.storage, owner="A", every_s=1)
    b = Sweeper(storage=store.storage, owner="B", every_s=1)
    assert a.sweep(now=deadline - 1) == []  # not overdue yet
    assert b.sweep(now=deadline + 1) == []  # A holds the lock
    jobs.extend_deadline(plan.job_id, deadline + 5)
    assert jobs.overdue(deadline + 1) == []
    assert a.sweep(now=deadline + 6) == [plan.job_id]
    record = jobs.get(plan.job_id)
    assert record is not None and record.status is JobStatus.FAILED
    assert record.error_stage == "Queued" and "stalled" in (record.error or "")
    assert jobs.overdue(deadline + 100) == []
    jobs.extend_deadline(plan.job_id, deadline + 200)  # never after it ended
    assert jobs.overdue(deadline + 300) == []


def test_overdue_lists_jobs_by_deadline_and_forget_keeps_live_ones(store: Backend) -> None:
    jobs = store.storage.jobs
    first, second = store.job("00000000000f"), store.job("00000000000e")
    d1, d2 = jobs.deadline(first.job_id), jobs.deadline(second.job_id)
    assert d1 is not None and d2 is not None
    late = max(d1, d2) + 1
    assert set(jobs.overdue(late)) == {first.job_id, second.job_id}
    assert len(jobs.overdue(late, limit=1)) == 1
    jobs.forget_deadline(first.job_id)  # still running: kept
    assert first.job_id in jobs.overdue(late)
    jobs.end(first.job_id, JobStatus.CANCELLED, TTL, events=[FINISHED])
    jobs.forget_deadline(first.job_id)
    assert jobs.overdue(late) == [second.job_id]


def test_a_dead_dispatchers_submissions_are_taken_over(store: Backend) -> None:
    jobs = store.job_store(claim_idle_ms=300)
    lanes = [Priority.INTERACTIVE, Priority.BATCH, Priority.BATCH]  # both lanes taken over
    ids = sorted(store.job(f"d15ba7c4{i:04d}", priority=p).job_id for i, p in enumerate(lanes))
    taken: list[str] = []
    while len(taken) < 3:
        taken += [s.job_id for s in jobs.next_submissions("A", block_ms=50, count=10)]
    assert sorted(taken) == ids  # A dies without acknowledging them
    other = store.job_store(claim_idle_ms=300)
    store.advance(0.5)
    claimed = other.next_submissions("B", block_ms=50, count=10)
    assert sorted(s.job_id for s in claimed) == ids
    other.ack_submissions(claimed)
    store.advance(0.5)
    assert other.next_submissions("C", block_ms=50, count=10) == []


def test_a_job_is_forgotten_after_its_retention(store: Backend) -> None:
    plan = store.job(retention_s=1)
    jobs = store.storage.jobs
    jobs.save_step(plan.job_id, "evaluation", "E", 1)
    store.advance(1.2)
    assert jobs.get(plan.job_id) is None and jobs.status(plan.job_id) is None
    assert jobs.load_step(plan.job_id, "evaluation") is None
    assert store.storage.progress.snapshot(plan.job_id).progress_percent == 0
    assert not store.storage.jobs.end(plan.job_id, JobStatus.FAILED, 1, events=[FINISHED])
