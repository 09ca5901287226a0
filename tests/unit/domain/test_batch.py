"""The batch's pure parts: what a content key addresses, progress and its ETA from one
tally, each member's events once, the estimate and the budget's refusal; and the
request's idempotency key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.poems import FOG, JING_YE_SI
from vpsweb.config import load_config
from vpsweb.domain.batch import (
    BatchMember,
    BatchRecord,
    BatchTally,
    BatchWatch,
    MemberState,
    budget_problems,
    content_key,
    estimate_of,
    eta_s,
    idempotency_address,
    overdue_jobs,
    progress_of,
)
from vpsweb.domain.estimate import estimate_job
from vpsweb.domain.plan import build_plan
from vpsweb.errors import RequestInvalid

CFG = load_config()
REQUEST = {"poem": FOG, "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 2}
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _key(**changes: object) -> str:
    offline = bool(changes.pop("offline", True))
    return content_key(build_plan(REQUEST | changes, CFG, job_id="0" * 12, offline=offline))


def test_the_content_key_addresses_what_changes_the_translation() -> None:
    base = _key()
    assert base == _key() and len(base) == 64
    # Not addressed: who waits first, a retry's key, the spending cap (and the job id).
    assert _key(priority="batch", idempotency_key="k-1", max_cost=5.0) == base
    plan = build_plan(REQUEST, CFG, job_id="1" * 12, offline=True)
    assert content_key(plan) == base
    # Addressed: the poem, every other field, the resolved N and dials, offline.
    changed = [
        _key(poem=JING_YE_SI, source_lang="zh-CN", target_lang="en"),
        _key(title="Fog"),
        _key(author="Sandburg"),
        _key(parallel_count=3),
        _key(workflow_mode="reasoning"),
        _key(strategy={"adaptation_level": "domesticating"}),
        _key(background_briefing="a harbour"),
        _key(straggler="wait_all"),
        _key(offline=False),
    ]
    assert len({base, *changed}) == len(changed) + 1
    # The configured default N is N: the same key as asking for it by number.
    default_n = CFG.pipeline.default_parallel_count(plan.workflow_mode)
    assert _key(parallel_count=None) == _key(parallel_count=default_n)


def test_the_content_key_covers_only_the_glossary_terms_the_poem_holds() -> None:
    fog = {"source": "fog", "target": "雾"}
    harbor = {"source": "harbor", "target": "港"}
    absent = {"source": "nightingale", "target": "夜莺"}
    with_fog = _key(glossary={"terms": [fog]})
    assert with_fog != _key()  # a term the poem holds changes its translation
    assert _key(glossary={"terms": [fog, absent]}) == with_fog  # one for another poem
    assert _key(glossary={"terms": [absent]}) == _key()
    assert _key(glossary={"terms": [fog], "mode": "strict"}) != with_fog
    assert _key(glossary={"terms": [fog, harbor]}) != with_fog


def test_the_content_key_addresses_the_plans_models() -> None:
    plan = build_plan(REQUEST, CFG, job_id="0" * 12, offline=True)
    step = next(iter(plan.steps))
    other = plan.steps[step].model_copy(update={"model": "another-model"})
    moved = plan.model_copy(update={"steps": {**plan.steps, step: other}})
    assert content_key(moved) != content_key(plan)
    warmer = plan.candidates[0].model_copy(
        update={"call": plan.candidates[0].call.model_copy(update={"temperature": 1.9})}
    )
    assert content_key(plan.model_copy(update={"candidates": [warmer, *plan.candidates[1:]]})) != (
        content_key(plan)
    )


def test_an_idempotency_key_is_bounded_printable_text() -> None:
    from vpsweb.domain.plan import validate_request

    assert validate_request(REQUEST | {"idempotency_key": "a:b/c-1"}, CFG).idempotency_key
    for bad in ("", "with space", "tab\t", "é", "x" * 201):
        with pytest.raises(RequestInvalid, match="idempotency_key"):
            validate_request(REQUEST | {"idempotency_key": bad}, CFG)
    assert idempotency_address("k") != idempotency_address("k2")
    assert idempotency_address("k").startswith("idem:") and len(idempotency_address("k")) == 69


def _record(n: int, start: datetime = T0, **fields: object) -> BatchRecord:
    members = [
        BatchMember(name=f"p{i}", where=f"r{i}", job_id=f"{i:012x}", content_key="k")
        for i in range(n)
    ]
    data: dict = {"batch_id": "b" * 12, "created_at": start, "run_started_at": start}
    return BatchRecord(**(data | fields), entries=members)


def _state(status: str | None, finished: float | None = None, **kw: object) -> MemberState:
    return MemberState(status=status, finished_at=finished, **kw)  # type: ignore[arg-type]


def test_progress_counts_percent_and_running_from_one_tally() -> None:
    record = _record(6)
    t0 = T0.timestamp()
    states = [
        _state("queued"),
        _state("running"),
        _state("waiting"),
        _state("succeeded", t0 + 10),
        _state("failed", t0 + 20, error="boom", error_stage="Editor Review"),
        _state(None),
    ]
    tally = BatchTally(
        version=1, spent=0.5, costs={"CNY": 0.5}, calls=7, tokens=900, members=states
    )
    progress = progress_of(record.model_copy(update={"currency": "CNY"}), tally, t0 + 30)
    c = progress.counts
    assert (c.queued, c.running, c.succeeded, c.failed, c.cancelled, c.expired) == (
        1,
        2,
        1,
        1,
        0,
        1,
    )
    assert c.total == 6 and c.finished == 3 and progress.percent == 50.0
    assert progress.running == [f"{1:012x}", f"{2:012x}"]
    assert (progress.calls, progress.tokens, progress.cost, progress.currency) == (
        7,
        900,
        0.5,
        "CNY",
    )
    assert progress.elapsed_s == 30.0 and not progress.done
    # Two finished in this run in 30 s; three left: 45 s.
    assert progress.eta_s == 45.0


def test_the_eta_counts_only_this_runs_finishes() -> None:
    t0 = 1000.0
    reused = _state("succeeded", t0 - 500)  # finished before the batch: no measure of it
    assert eta_s([reused, _state("running")], t0, t0 + 10) is None  # nothing finished yet
    assert eta_s([reused, _state("succeeded", t0 + 5), _state("queued")], t0, t0 + 10) == 10.0
    assert eta_s([reused, _state("cancelled", t0 + 1)], t0, t0 + 10) == 0.0


def test_percent_never_moves_back_as_members_finish() -> None:
    record = _record(4)
    order = ["queued", "running", "succeeded"]
    seen = []
    states = [_state("queued") for _ in range(4)]
    for i in range(4):
        for status in order:
            states[i] = _state(status, T0.timestamp() + i if status == "succeeded" else None)
            tally = BatchTally(version=1, members=list(states))
            seen.append(progress_of(record, tally, T0.timestamp() + 10).percent)
    assert seen == sorted(seen) and seen[-1] == 100.0
    assert progress_of(_record(0), BatchTally(version=1, members=[]), 0).percent == 100.0
    # Ended: its clock stops at the last finish (T0 + 3), however late it is read.
    created = record.created_at.timestamp()
    later = progress_of(record, tally, T0.timestamp() + 3600)
    assert later.done and later.elapsed_s == round(T0.timestamp() + 3 - created, 1)


def test_each_members_events_come_once_and_the_watch_ends() -> None:
    record = _record(3)
    watch = BatchWatch()
    t = T0.timestamp()

    def tally(*statuses: str | None, **kw: object) -> BatchTally:
        return BatchTally(version=1, members=[_state(s, t, **kw) for s in statuses])

    assert watch.update(record, tally("queued", "queued", "queued")) == []
    first = watch.update(record, tally("running", "queued", "succeeded"))
    assert [(e.kind, e.name) for e in first] == [
        ("job_started", "p0"),
        ("job_started", "p2"),
        ("job_succeeded", "p2"),
    ]
    assert watch.update(record, tally("running", "queued", "succeeded")) == []
    states = [_state("failed", t, error="boom", error_stage="Editor Review")]
    states += [_state("cancelled", t), _state("succeeded", t)]
    last = watch.update(record, BatchTally(version=1, members=states))
    assert [(e.kind, e.name) for e in last] == [
        ("job_failed", "p0"),
        ("job_started", "p1"),
        ("job_cancelled", "p1"),
    ]
    assert last[0].cause == "Editor Review: boom" and last[0].terminal
    assert watch.done(record)
    # A member given a new job (a resume) starts over.
    resumed = record.model_copy(
        update={"entries": [record.entries[0].model_copy(update={"job_id": "f" * 12})]}
    )
    again = watch.update(resumed, BatchTally(version=2, members=[_state("running")]))
    assert [e.kind for e in again] == ["job_started"] and not watch.done(resumed)
    gone = watch.update(resumed, BatchTally(version=2, members=[_state(None)]))
    assert [e.kind for e in gone] == ["job_failed"] and "no longer stored" in (gone[0].cause or "")


def test_overdue_members_are_those_past_their_deadline_and_not_ended() -> None:
    record = _record(4)
    states = [
        _state("running", deadline=5.0),
        _state("queued", deadline=50.0),
        _state("waiting", deadline=5.0),  # a person has no deadline
        _state("failed", deadline=5.0),
    ]
    assert overdue_jobs(record, BatchTally(version=1, members=states), 10.0) == [record.job_ids[0]]


def test_the_batch_estimate_sums_its_jobs_and_the_budget_refuses_above_it() -> None:
    plans = [build_plan(REQUEST, CFG, job_id=f"{i:012x}", offline=True) for i in range(3)]
    jobs = [estimate_job(p, CFG) for p in plans]
    one = sum(jobs[0].expected.cost.values())
    total = estimate_of(jobs, budget=one * 3 * 1.01)
    assert total.count == 3 and total.expected.calls == 3 * jobs[0].expected.calls
    assert sum(total.expected.cost.values()) == pytest.approx(3 * one)
    assert budget_problems(total) == [] and budget_problems(estimate_of(jobs)) == []
    assert "3 poem(s)" in total.text() and "budget" in total.text()
    (line,) = budget_problems(estimate_of(jobs, budget=one * 2))
    assert line.startswith(f"budget: {one * 2:g} CNY is below this batch's estimated cost")
    assert "3 new job(s)" in line
    # On a resume, what the batch spent counts too.
    (again,) = budget_problems(estimate_of(jobs[:1], budget=one * 2), spent=one * 1.5)
    assert "on top of the" in again
    mixed = estimate_of(jobs, budget=1.0).model_copy(update={"currencies": ["CNY", "USD"]})
    assert "several currencies" in budget_problems(mixed)[0]


def test_the_record_round_trips() -> None:
    record = _record(2, budget=1.5, currency="CNY", name="Tang")
    assert BatchRecord.model_validate_json(record.model_dump_json()) == record
    assert record.job_ids == [f"{0:012x}", f"{1:012x}"]
    later = record.model_copy(update={"run_started_at": T0 + timedelta(seconds=5)})
    assert later.run_started_at > later.created_at
