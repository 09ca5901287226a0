"""Batches: a submission's look-up, decision and writes are one transaction (a decision
that raises writes nothing; racing submissions with one address make one job); the
record, its index and its counters; a tally of every member; a budgeted job's check."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from tests.helpers.storage_backends import Backend
from vpsweb.config import load_config
from vpsweb.domain.batch import BatchMember, BatchRecord
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.progress import EventKind
from vpsweb.errors import RequestInvalid
from vpsweb.storage import Event, JobStatus
from vpsweb.storage.batches import BatchWrite, Found

TTL = 600
DONE = Event(EventKind.JOB_FINISHED, 100, {"status": "succeeded"})


def _plan(job_id: str, batch_id: str | None = None, **overrides: object) -> JobPlan:
    data = {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 1}
    plan = build_plan(data, load_config(), job_id=job_id, offline=True)
    return plan.model_copy(update={"batch_id": batch_id, **overrides})


def _record(batch_id: str, job_ids: list[str], **fields: object) -> BatchRecord:
    now = datetime.now(UTC)
    members = [
        BatchMember(name=f"p{i}", where=f"request {i}", job_id=j, content_key=f"k{i}")
        for i, j in enumerate(job_ids)
    ]
    data: dict = {"batch_id": batch_id, "created_at": now, "run_started_at": now}
    return BatchRecord(**(data | fields), entries=members)


def _write(record: BatchRecord, plans: list[JobPlan], **kw: object) -> BatchWrite:
    return BatchWrite(jobs=record.job_ids, ttl=TTL, plans=plans, record=record, **kw)  # type: ignore[arg-type]


def _finish(store: Backend, job_id: str, key: str, payload: str, batch_id: str) -> str:
    return store.storage.steps.finish(
        job_id, key, payload, owner="A", ttl=TTL, end=None, once="", item=None, batch_id=batch_id
    )


def _output(cost: float, currency: str = "CNY") -> str:
    usage = {"cost": cost, "currency": currency, "prompt_tokens": 100, "completion_tokens": 20}
    return json.dumps({"translation": "x", "metrics": {"usage": usage, "attempts": 2}})


def test_a_batch_is_written_with_its_jobs_and_addresses_at_once(store: Backend) -> None:
    batches, jobs = store.storage.batches, store.storage.jobs
    plans = [_plan(f"b0000000000{i}", "ba7c40000001") for i in range(3)]
    record = _record("ba7c40000001", [p.job_id for p in plans], name="tang", budget=2.5)
    seen: list[Mapping[str, Found]] = []

    def decide(found: Mapping[str, Found]) -> BatchWrite:
        seen.append(found)
        return _write(record, plans, addresses={"content:k0": plans[0].job_id})

    assert batches.submit(["content:k0", "idem:x"], decide).record == record
    assert seen == [{}]  # nothing was there
    assert batches.get("ba7c40000001") == record and batches.get("ba7c40000009") is None
    assert [r.batch_id for r in batches.recent()] == ["ba7c40000001"]
    assert all(jobs.status(p.job_id) is JobStatus.QUEUED for p in plans)
    subs = jobs.next_submissions("d", block_ms=10, count=10)
    assert sorted(s.job_id for s in subs) == [p.job_id for p in plans]
    # The address now points at its job, with the job's status.
    found = batches.submit(
        ["content:k0", "idem:x"], lambda f: seen.append(f) or BatchWrite([], TTL)
    )
    assert found.jobs == [] and seen[-1] == {"content:k0": Found(plans[0].job_id, "queued")}


def test_a_decision_that_raises_writes_nothing(store: Backend) -> None:
    plan = _plan("b00000000001", "ba7c40000002")
    record = _record("ba7c40000002", [plan.job_id])

    def refuse(found: Mapping[str, Found]) -> BatchWrite:
        raise RequestInvalid(["budget: too low"])

    with pytest.raises(RequestInvalid):
        store.storage.batches.submit(["content:k0"], refuse)
    assert store.storage.batches.get(record.batch_id) is None
    assert store.storage.jobs.get(plan.job_id) is None
    assert store.storage.batches.recent() == []


def test_an_address_whose_job_is_gone_is_found_without_a_status(store: Backend) -> None:
    batches = store.storage.batches
    batches.submit(
        [], lambda f: BatchWrite(["gone00000001"], TTL, addresses={"idem:a": "gone00000001"})
    )
    found: list[Mapping[str, Found]] = []
    batches.submit(["idem:a"], lambda f: found.append(f) or BatchWrite([], TTL))
    assert found == [{"idem:a": Found("gone00000001", None)}]


def test_racing_submissions_with_one_address_make_one_job(store: Backend) -> None:
    batches, made = store.storage.batches, []
    start = threading.Barrier(8)

    def submit(i: int) -> None:
        plan = _plan(f"1de000000{i:03d}")

        def decide(found: Mapping[str, Found]) -> BatchWrite:
            seen = found.get("idem:same")
            if seen is not None and seen.status is not None:
                return BatchWrite([seen.job_id], TTL)
            return BatchWrite([plan.job_id], TTL, [plan], addresses={"idem:same": plan.job_id})

        start.wait()
        made.append(batches.submit(["idem:same"], decide).jobs[0])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 8 and len(set(made)) == 1
    created = [j for j in store.storage.jobs.recent_jobs(100) if j.startswith("1de")]
    assert created == made[:1]


def test_the_tally_reads_every_member_and_the_counters(store: Backend) -> None:
    batches, jobs = store.storage.batches, store.storage.jobs
    plans = [_plan(f"c0000000000{i}", "ba7c40000003") for i in range(3)]
    record = _record("ba7c40000003", [p.job_id for p in plans] + ["c0ffeec0ffee"], budget=1.0)
    batches.submit([], lambda f: _write(record, plans))
    jobs.mark_running(plans[0].job_id, TTL)
    jobs.mark_running(plans[1].job_id, TTL)
    jobs.end(plans[1].job_id, JobStatus.SUCCEEDED, TTL, events=[DONE], result="{}")
    batch = record.batch_id
    for key, cost in (("candidate-0", 0.25), ("evaluation", 0.5)):
        _finish(store, plans[0].job_id, key, _output(cost), batch)
    # A redelivered output is not stored again: nor counted again.
    _finish(store, plans[0].job_id, "evaluation", _output(9.0), batch)
    _finish(store, plans[2].job_id, "candidate-0", _output(0.01, "USD"), batch)
    tally = batches.tally(record)
    assert tally.version == 1 and tally.budget == 1.0
    assert tally.spent == pytest.approx(0.76) and tally.calls == 6 and tally.tokens == 360
    assert tally.costs == pytest.approx({"CNY": 0.75, "USD": 0.01})
    statuses = [m.status for m in tally.members]
    assert statuses == ["running", "succeeded", "queued", None]
    running, done, queued, gone = tally.members
    assert running.started_at and running.finished_at is None and running.deadline
    assert done.finished_at and done.finished_at >= (done.started_at or 0)
    assert queued.started_at is None and gone.deadline is None
    # The job's own spend is counted as before.
    assert jobs.status_and_spent(plans[0].job_id)[1] == pytest.approx(0.75)


def test_a_step_counts_in_its_batch_once_however_often_it_is_counted(store: Backend) -> None:
    batches = store.storage.batches
    plan = _plan("c10000000001", "ba7c40000013")
    record = _record("ba7c40000013", [plan.job_id])
    batches.submit([], lambda f: _write(record, [plan]))
    _finish(store, plan.job_id, "candidate-0", _output(0.25), record.batch_id)
    # A redelivery that finds the step stored counts it again: nothing changes.
    batches.count_step(record.batch_id, plan.job_id, "candidate-0", _output(0.25), TTL)
    # A step stored by a delivery that died before its batch count: counted once.
    for _ in range(2):
        batches.count_step(record.batch_id, plan.job_id, "evaluation", _output(0.5), TTL)
    tally = batches.tally(record)
    assert tally.spent == pytest.approx(0.75) and tally.calls == 4 and tally.tokens == 240
    assert tally.costs == pytest.approx({"CNY": 0.75})


def test_a_failed_member_has_its_stage_and_cause(store: Backend) -> None:
    from vpsweb.orchestrator.lifecycle import fail_job

    plan = _plan("d00000000001", "ba7c40000004")
    record = _record("ba7c40000004", [plan.job_id])
    store.storage.batches.submit([], lambda f: _write(record, [plan]))
    fail_job(store.storage, plan.job_id, "Editor Review", "boom")
    (member,) = store.storage.batches.tally(record).members
    assert (member.status, member.error_stage, member.error) == ("failed", "Editor Review", "boom")


def test_counters_of_a_batch_that_is_gone_are_not_re_created(store: Backend) -> None:
    plan = _plan("e00000000001", "ba7c40000005")
    store.storage.jobs.create([plan])  # a batch job whose batch has no record
    _finish(store, plan.job_id, "candidate-0", _output(0.5), "ba7c40000005")
    check = store.storage.batches.spend_check(plan.job_id, "ba7c40000005")
    assert (check.batch_spent, check.budget) == (0.0, None)
    assert check.job_spent == pytest.approx(0.5)


def test_a_budgeted_jobs_check_reads_job_and_batch_at_once(store: Backend) -> None:
    batches = store.storage.batches
    plan = _plan("f00000000001", "ba7c40000006")
    record = _record("ba7c40000006", [plan.job_id], budget=0.3)
    batches.submit([], lambda f: _write(record, [plan]))
    _finish(store, plan.job_id, "candidate-0", _output(0.2), record.batch_id)
    check = batches.spend_check(plan.job_id, record.batch_id)
    assert check.status == "queued" and check.late_in is None
    assert check.job_spent == pytest.approx(0.2) and check.batch_spent == pytest.approx(0.2)
    assert check.budget == 0.3
    late = batches.spend_check(plan.job_id, record.batch_id, late=True)
    assert (late.status, late.late_in) == ("queued", None)  # no quorum reached yet
    assert late.batch_spent == pytest.approx(0.2)
    # A resume raises the budget: the counters say so at once.
    raised = record.model_copy(update={"version": 2, "budget": 0.5})
    batches.submit([], lambda f: BatchWrite(raised.job_ids, TTL, record=raised))
    assert batches.spend_check(plan.job_id, record.batch_id).budget == 0.5
    assert batches.tally(raised).version == 2 and batches.get(record.batch_id) == raised


def test_kept_jobs_last_as_long_as_the_batch_naming_them(store: Backend) -> None:
    old = _plan("a10000000001", retention_s=1)
    store.storage.jobs.create([old])
    record = _record("ba7c40000007", [old.job_id])
    store.storage.batches.submit([], lambda f: _write(record, [], keep=[old.job_id]))
    store.advance(1.3)
    assert store.storage.jobs.status(old.job_id) is JobStatus.QUEUED
    assert store.storage.batches.plans([old.job_id, "a10000000009"]) == [old, None]


def test_recent_batches_newest_first(store: Backend) -> None:
    batches = store.storage.batches
    for i in range(3):
        record = _record(f"ba7c4000001{i}", [])
        batches.submit([], lambda f, r=record: _write(r, []))
        store.advance(0.01)
    assert [r.batch_id for r in batches.recent(2)] == ["ba7c40000012", "ba7c40000011"]
