"""Manual prompts (park, answer once, resume with the stage's last answer), usage
recorded once per job, and worker presence."""

from __future__ import annotations

import json

from tests.helpers.storage_backends import Backend
from vpsweb.domain.progress import EventKind
from vpsweb.storage import Event, JobStatus

TTL = 600
KEYS = ["candidate-0", "candidate-1"]


def _answer(store: Backend, job: str, key: str, text: str = "answer") -> str:
    return store.storage.manual.answer(job, key, text, stage_keys=KEYS, deadline=2e9, ttl=TTL)


def test_a_parked_prompt_is_answered_once_and_the_last_answer_resumes(store: Backend) -> None:
    plan = store.job()
    manual, jobs, job = store.storage.manual, store.storage.jobs, plan.job_id
    jobs.next_submissions("d", block_ms=10, count=10)  # the job's first submission
    assert _answer(store, job, "candidate-0") == "not_pending"
    assert manual.park(job, "candidate-0", '{"p": 0}', TTL)
    assert manual.park(job, "candidate-1", '{"p": 1}', TTL)
    assert jobs.status(job) is JobStatus.WAITING
    assert jobs.overdue(1e12) == []  # a person has no deadline
    jobs.extend_deadline(job, 1e9)  # nor does a step's start give it one
    assert jobs.overdue(1e12) == []
    assert manual.pending(job) == {"candidate-0": '{"p": 0}', "candidate-1": '{"p": 1}'}
    assert _answer(store, job, "candidate-0", "zero") == "stored"
    assert _answer(store, job, "candidate-0", "again") == "answered"
    assert manual.answer_of(job, "candidate-0") == "zero"
    assert manual.pending(job) == {"candidate-1": '{"p": 1}'}
    assert jobs.status(job) is JobStatus.WAITING
    assert jobs.next_submissions("d", block_ms=10, count=10) == []
    assert _answer(store, job, "candidate-1", "one") == "resumed"
    assert jobs.status(job) is JobStatus.QUEUED and jobs.deadline(job) == 2e9
    assert jobs.overdue(2e9 + 1) == [job]
    resubmitted = jobs.next_submissions("d", block_ms=10, count=10)
    assert [s.job_id for s in resubmitted] == [job]
    assert manual.pending(job) == {} and manual.answer_of(job, "candidate-1") == "one"
    # Answered again before the job started: resumed again (a caller that died before
    # writing the submission is made good); once running, only 'answered'.
    assert _answer(store, job, "candidate-1", "once more") == "resumed"
    assert manual.answer_of(job, "candidate-1") == "one"
    assert [s.job_id for s in jobs.next_submissions("d", block_ms=10, count=10)] == [job]
    jobs.mark_running(job, TTL)
    assert _answer(store, job, "candidate-1") == "answered"


def test_an_ended_or_unknown_job_takes_no_prompt_and_no_answer(store: Backend) -> None:
    plan = store.job()
    manual, job = store.storage.manual, plan.job_id
    assert manual.park(job, "candidate-0", "{}", TTL)
    finished = Event(EventKind.JOB_FINISHED, 0, {"status": "cancelled"})
    store.storage.jobs.end(job, JobStatus.CANCELLED, TTL, events=[finished])
    assert not manual.park(job, "candidate-1", "{}", TTL)
    assert _answer(store, job, "candidate-0") == "ended"
    assert manual.answer_of(job, "candidate-0") is None
    assert not manual.park("unknown", "candidate-0", "{}", TTL)
    assert _answer(store, "unknown", "candidate-0") == "gone"


def _summary(job: str, at: float) -> str:
    return json.dumps({"job_id": job, "finished_at": at})


def test_usage_is_recorded_once_per_summary_and_trimmed_to_retention(store: Backend) -> None:
    usage = store.storage.usage
    usage.record(_summary("a", 1000.0), {"calls|mode=hybrid": 3, "cost": 0.5}, TTL)
    usage.record(_summary("a", 1000.0), {"calls|mode=hybrid": 3, "cost": 0.5}, TTL)  # retried
    usage.record(_summary("b", 1100.0), {"calls|mode=hybrid": 2}, TTL)
    assert usage.counters() == {"calls|mode=hybrid": 5.0, "cost": 0.5}
    assert [json.loads(s)["job_id"] for s in usage.summaries(0)] == ["a", "b"]
    assert [json.loads(s)["job_id"] for s in usage.summaries(1050)] == ["b"]
    usage.record(_summary("c", 1000.0 + TTL + 50), {"cost": 1}, TTL)  # a older than TTL
    assert [json.loads(s)["job_id"] for s in usage.summaries(0)] == ["b", "c"]
    assert usage.counters()["cost"] == 1.5  # counters never go down


def test_live_workers_are_those_whose_heartbeat_has_not_lapsed(store: Backend) -> None:
    presence = store.storage.presence
    presence.beat("w1", ["q2", "q1"], 0.2)
    presence.beat("w2", ["q1"], 5)
    assert presence.live() == {"w1": ["q1", "q2"], "w2": ["q1"]}
    store.advance(0.3)
    assert presence.live() == {"w2": ["q1"]}
    presence.leave("w2")
    assert presence.live() == {}
