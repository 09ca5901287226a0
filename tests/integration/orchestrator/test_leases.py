"""Leases, the keeper and the sweeper's lock against a real Redis, without Celery."""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers.redis_server import start_redis
from vpsweb.config import load_config
from vpsweb.domain.models import CandidateResult
from vpsweb.domain.plan import build_plan
from vpsweb.errors import Cancelled
from vpsweb.orchestrator import execution
from vpsweb.orchestrator.keeper import Keeper
from vpsweb.orchestrator.sweeper import Sweeper
from vpsweb.stages import runs
from vpsweb.stages.table import Stage, stage
from vpsweb.storage import Storage, connect
from vpsweb.storage.memory import memory_storage


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def storage(request: pytest.FixtureRequest):
    """Every rule here on the in-memory store (milliseconds) and on a real Redis."""
    if request.param == "memory":
        yield memory_storage()
        return
    server = start_redis()
    store = connect(server.url)
    yield store
    store.close()
    server.stop()


def _job(storage: Storage, job_id: str = "1ea5e0000001"):
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 1},
        load_config(),
        job_id=job_id,
        offline=True,
    )
    storage.jobs.create([plan])
    return plan


def test_a_lease_has_one_holder_and_lapses_without_renewal(storage: Storage) -> None:
    leases = storage.leases
    assert leases.acquire("j", "evaluation", "A", 0.5)
    assert not leases.acquire("j", "evaluation", "B", 0.5)
    assert not leases.renew("j", "evaluation", "B", 0.5)  # B may not steal it
    assert leases.renew("j", "evaluation", "A", 0.5)
    leases.release("j", "evaluation", "B")  # not B's to release
    assert leases.holder("j", "evaluation") == "A"
    time.sleep(0.7)
    assert leases.holder("j", "evaluation") is None  # A died: it lapsed
    assert leases.renew("j", "evaluation", "A", 0.5)  # A alive after all: re-taken
    leases.release("j", "evaluation", "A")
    assert leases.holder("j", "evaluation") is None


def test_the_keeper_renews_until_the_budget_and_flags_a_lost_claim() -> None:
    renewals: list[float] = []
    keeper = Keeper(every_s=0.1)
    kept = keeper.keep(lambda: renewals.append(time.monotonic()) or True, for_s=0.35, what="a")
    stolen = keeper.keep(lambda: False, for_s=5, what="b")
    time.sleep(0.8)
    assert 2 <= len(renewals) <= 4  # renewed while within its budget, then left to lapse
    assert stolen.lost.is_set() and not kept.lost.is_set()


def _lost(ctx, index: int, error: str) -> CandidateResult:
    return runs.lost(stage("initial_translation"), ctx.plan, index, error)


_per_thread = threading.local()


@pytest.fixture(autouse=True)
def _runs_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each delivery (a thread) runs the stand-in its ``_stub`` gave, else the stage."""
    real = runs.RUN["initial_translation"]

    def by_thread(ctx, prior, index):
        return getattr(_per_thread, "run", real)(ctx, prior, index)

    monkeypatch.setitem(runs.RUN, "initial_translation", by_thread)


def _stub(run) -> Stage:
    """The first stage with ``run`` in place of its LLM calls in this thread (it needs
    no inputs); called in the delivery's own thread."""
    _per_thread.run = run
    return stage("initial_translation")


def test_a_second_delivery_waits_for_the_first_ones_output(storage: Storage) -> None:
    plan = _job(storage)
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]
    produced: list[str] = []
    release = threading.Event()

    def slow_first(ctx, prior, index):
        produced.append("first")
        release.wait(5)
        return _lost(ctx, index, "from the first delivery")

    def second(ctx, prior, index):
        produced.append("second")
        return _lost(ctx, index, "from the second delivery")

    results: dict[str, dict] = {}
    first = threading.Thread(
        target=lambda: results.setdefault(
            "first", execution.run_step(svc, _stub(slow_first), plan.job_id, 0)
        )
    )
    first.start()
    time.sleep(0.3)
    waiter = threading.Thread(
        target=lambda: results.setdefault(
            "second", execution.run_step(svc, _stub(second), plan.job_id, 0)
        )
    )
    waiter.start()
    time.sleep(1.0)
    assert "second" not in results  # still waiting: the first holds the lease
    release.set()
    first.join(5)
    waiter.join(5)
    assert produced == ["first"]  # one paid run
    assert results["first"] == results["second"]
    stored = CandidateResult.model_validate_json(storage.jobs.load_step(plan.job_id, "candidate-0"))
    assert stored.error == "from the first delivery"
    assert storage.progress.snapshot(plan.job_id).failed == 1  # counted once
    assert storage.leases.holder(plan.job_id, "candidate-0") is None


def test_a_waiting_delivery_takes_over_a_lapsed_lease(storage: Storage) -> None:
    plan = _job(storage)
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]
    storage.leases.acquire(plan.job_id, "candidate-0", "a-dead-worker", 1.0)  # never renewed

    def takes_over(ctx, prior, index):
        return _lost(ctx, index, "from the second delivery")

    began = time.monotonic()
    assert execution.run_step(svc, _stub(takes_over), plan.job_id, 0)["status"] == "failed"
    assert time.monotonic() - began >= 0.5  # it waited for the lease to lapse
    stored = CandidateResult.model_validate_json(storage.jobs.load_step(plan.job_id, "candidate-0"))
    assert stored.error == "from the second delivery"
    assert storage.leases.holder(plan.job_id, "candidate-0") is None


def test_a_lost_lease_stops_the_step_before_its_next_call(storage: Storage) -> None:
    plan = _job(storage)
    svc = execution.Services(
        storage=storage, config=load_config(), llm=None, keeper=Keeper(every_s=0.1)
    )  # type: ignore[arg-type]

    def stolen(ctx, prior, index):
        # Another worker takes the step over (this one's lease was deemed dead).
        holder = storage.leases.holder(plan.job_id, "candidate-0")
        assert holder is not None
        storage.leases.release(plan.job_id, "candidate-0", holder)
        storage.leases.acquire(plan.job_id, "candidate-0", "someone-else", 10)
        time.sleep(0.5)  # the keeper's next renewal finds out
        ctx.check()  # what the LLM client calls before and during every call
        return _lost(ctx, index, "never stored")

    with pytest.raises(Cancelled, match="taken over"):
        execution.run_step(svc, _stub(stolen), plan.job_id, 0)
    assert storage.jobs.load_step(plan.job_id, "candidate-0") is None
    assert storage.leases.holder(plan.job_id, "candidate-0") == "someone-else"  # not ours


def test_one_sweeper_at_a_time_and_only_overdue_jobs(storage: Storage) -> None:
    plan = _job(storage, "5eee00000001")
    a = Sweeper(storage=storage, owner="A", every_s=1)
    b = Sweeper(storage=storage, owner="B", every_s=1)
    deadline = storage.jobs.deadline(plan.job_id)
    assert deadline is not None
    assert a.sweep(now=deadline - 1) == []  # not overdue yet
    assert b.sweep(now=deadline + 1) == []  # A holds the lock
    assert a.sweep(now=deadline + 1) == [plan.job_id]
    record = storage.jobs.get(plan.job_id)
    assert record is not None and record.status.value == "failed"
    assert record.error_stage == "Queued" and "stalled" in (record.error or "")
    assert storage.jobs.overdue(deadline + 1) == []
