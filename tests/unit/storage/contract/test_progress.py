"""Progress: counted once, milestones once, each event with the percentage after it,
never backwards, nothing after the terminal event; the straggler policy's clock."""

from __future__ import annotations

import random
import threading

import pytest

from tests.helpers.storage_backends import Backend, stream_events
from vpsweb.domain.progress import EventKind, milestones
from vpsweb.storage import Event, JobStatus
from vpsweb.storage.base import CandidateEnd

TTL = 600
STAGE = "Initial Translation"


def _finish(store: Backend, job: str, i: int, n: int, **kw) -> tuple[int, bool]:
    end = CandidateEnd(i, n=n, end_percent=25.0, stage=STAGE, **{"ok": True, **kw})
    return store.storage.progress.candidate_finished(job, end, TTL)


def test_percent_never_goes_back_and_nothing_after_terminal(store: Backend) -> None:
    plan = store.job()
    job, log = plan.job_id, store.storage.progress
    for p in (10, 50, 30, 70, 20):
        assert log.emit(job, Event(EventKind.STAGE_STARTED, p, {}), TTL)
    finished = Event(EventKind.JOB_FINISHED, 100, {"status": "succeeded"})
    assert store.storage.jobs.end(job, JobStatus.SUCCEEDED, TTL, events=[finished])
    assert not log.emit(job, Event(EventKind.STAGE_STARTED, 99, {}), TTL)
    events = list(log.events(job, timeout=5))
    assert [e.progress_percent for e in events] == [0, 10, 50, 50, 70, 70, 100]
    assert events[-1].terminal and log.snapshot(job).terminal


def test_an_event_with_a_once_key_is_appended_once(store: Backend) -> None:
    plan = store.job()
    log = store.storage.progress
    start = Event(EventKind.STAGE_STARTED, 5, {"stage": "Editor Review"})
    assert log.emit(plan.job_id, start, TTL, once="start:editor")
    assert not log.emit(plan.job_id, start, TTL, once="start:editor")
    assert log.emit(plan.job_id, start, TTL)  # no key: always
    snap = log.snapshot(plan.job_id)
    assert (snap.stage, snap.progress_percent) == ("Editor Review", 5)
    assert len(stream_events(store, plan.job_id)) == 3


def test_a_candidates_event_carries_the_percentage_after_it(store: Backend) -> None:
    """Issue 21 point 12: the README's loop printed "0.0 ... 1/3 completed", then 8.33."""
    plan = store.job(parallel_count=3)
    details = {"variant": "literal", "duration_s": 2.0, "error": None}
    for i in range(3):
        assert _finish(store, plan.job_id, i, 3, details=details) == (i + 1, True)
    seen = [
        (e.event.value, e.parallel_progress, e.progress_percent)
        for e in stream_events(store, plan.job_id)[1:]
    ]
    assert seen == [
        ("candidate_finished", "1/3 completed", 8.33),
        ("milestone", "1/3 completed", 8.33),
        ("candidate_finished", "2/3 completed", 16.67),
        ("milestone", "2/3 completed", 16.67),
        ("candidate_finished", "3/3 completed", 25),
        ("milestone", "3/3 completed", 25),
    ]
    own = stream_events(store, plan.job_id)[1]
    assert (own.index, own.variant, own.duration_s, own.error) == (0, "literal", 2.0, "")


def test_each_candidate_counts_once_and_milestones_come_once_in_order(store: Backend) -> None:
    n, failed = 8, {3, 5}
    plan = store.job()
    order = list(range(n)) + random.Random(1).sample(range(n), 4)  # 4 delivered twice
    random.Random(2).shuffle(order)
    counts = [_finish(store, plan.job_id, i, n, ok=i not in failed)[0] for i in order]
    assert sorted(c for c in counts if c) == list(range(1, n + 1))
    assert counts.count(0) == 4  # the duplicates
    stream = stream_events(store, plan.job_id)[1:]
    own = [e for e in stream if e.event is EventKind.CANDIDATE_FINISHED]
    assert sorted(e.index for e in own if e.index is not None) == list(range(n))
    assert {e.index for e in own if e.status == "failed"} == failed
    marks = [e for e in stream if e.event is EventKind.MILESTONE]
    assert [int(e.parallel_progress.split("/")[0]) for e in marks] == milestones(n)
    every = [e.progress_percent for e in stream]
    assert every == sorted(every) and every[-1] == 25.0
    assert (marks[-1].successful, marks[-1].failed, marks[-1].status) == (6, 2, "completed")
    snap = store.storage.progress.snapshot(plan.job_id)
    assert (snap.successful, snap.failed, snap.status) == (6, 2, "completed")


def test_a_stage_whose_candidates_all_failed_says_so(store: Backend) -> None:
    plan = store.job()
    for i in range(2):
        _finish(store, plan.job_id, i, 2, ok=False, details={"error": "boom"})
    snap = store.storage.progress.snapshot(plan.job_id)
    assert (snap.status, snap.failed, snap.successful) == ("failed", 2, 0)


def test_counting_from_many_threads_counts_each_once(store: Backend) -> None:
    n = 30
    plan = store.job()
    order = list(range(n)) * 2
    random.Random(3).shuffle(order)
    chunks = [order[i::6] for i in range(6)]
    threads = [
        threading.Thread(target=lambda c=c: [_finish(store, plan.job_id, i, n) for i in c])
        for c in chunks
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    marks = [e for e in stream_events(store, plan.job_id) if e.event is EventKind.MILESTONE]
    assert [int(e.parallel_progress.split("/")[0]) for e in marks] == milestones(n)
    assert store.storage.progress.snapshot(plan.job_id).successful == n


def test_the_straggler_quorum_starts_a_grace_period(store: Backend) -> None:
    plan = store.job()
    log, job = store.storage.progress, plan.job_id
    assert log.straggler_check(job) == ("queued", None, 0.0)  # no quorum yet, no spend
    quorum = {"quorum": 2, "grace": 0.1}
    _finish(store, job, 0, 3, details={"duration_s": 1.0}, **quorum)
    assert log.straggler_check(job)[1] is None
    _finish(store, job, 1, 3, details={"duration_s": 3.0}, **quorum)
    status, left, _ = log.straggler_check(job)
    assert status == "queued" and left is not None
    assert 0.15 < left <= 0.21  # 0.1 x the median 2 s, rounded to the millisecond
    store.advance(0.3)
    left = log.straggler_check(job)[1]
    assert left is not None and left <= 0
    assert _finish(store, job, 2, 3, ok=False, late=True) == (3, True)
    last = stream_events(store, job)[-1]
    assert last.event is EventKind.MILESTONE and last.late == 1
    assert last.parallel_progress == "2/3 completed, 1 late"
    assert store.storage.progress.snapshot(job).late == 1


def test_following_a_job_replays_then_waits_and_times_out(store: Backend) -> None:
    plan = store.job()
    log = store.storage.progress
    idle: list[int] = []

    def on_idle() -> list:
        idle.append(1)
        return []

    seen = []
    with pytest.raises(TimeoutError):
        for event in log.events(plan.job_id, timeout=store.quiet_s, on_idle=on_idle):
            seen.append(event)
    assert [e.event for e in seen] == [EventKind.JOB_QUEUED] and idle
    log.emit(plan.job_id, Event(EventKind.STAGE_STARTED, 5, {}), TTL)
    store.storage.jobs.end(
        plan.job_id, JobStatus.CANCELLED, TTL, events=[Event(EventKind.JOB_FINISHED, 0, {})]
    )
    rest = list(log.events(plan.job_id, timeout=5, start=seen[0].id))
    assert [e.event for e in rest] == [EventKind.STAGE_STARTED, EventKind.JOB_FINISHED]
