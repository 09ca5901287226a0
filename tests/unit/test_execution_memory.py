"""Worker-side step execution on the memory store: the rules of
tests/integration/test_execution.py and test_leases.py, without redis-server (those
stay, for the real store and real processes)."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from vpsweb.config import load_config
from vpsweb.domain.models import CandidateResult, EditorReview
from vpsweb.domain.plan import build_plan
from vpsweb.errors import Cancelled
from vpsweb.orchestrator import execution
from vpsweb.orchestrator.keeper import Keeper
from vpsweb.orchestrator.lifecycle import cancel_job
from vpsweb.stages import runs
from vpsweb.stages.table import stage
from vpsweb.storage.memory import memory_storage


def _stored_job(job_id: str, *, n: int = 1, keeper: Keeper | None = None):
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": n},
        load_config(),
        job_id=job_id,
        offline=True,
    )
    storage = memory_storage()
    storage.jobs.create([plan])
    extra = {"keeper": keeper} if keeper else {}
    svc = execution.Services(storage=storage, config=load_config(), llm=None, **extra)  # type: ignore[arg-type]
    return plan, storage, svc


def test_unexpected_error_fails_only_that_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    plan, storage, svc = _stored_job("e0ec0b0e0000", n=2)

    def broken(ctx, prior, index):
        raise RuntimeError("template exploded")

    monkeypatch.setitem(runs.RUN, "initial_translation", broken)
    ref = execution.run_step(svc, stage("initial_translation"), plan.job_id, 1)
    assert ref == {"job_id": plan.job_id, "index": 1, "status": "failed"}
    raw = storage.jobs.load_step(plan.job_id, "candidate-1")
    assert raw is not None
    stored = CandidateResult.model_validate_json(raw)
    assert stored.error == "internal error: RuntimeError: template exploded"
    assert storage.jobs.status(plan.job_id).value == "running"  # type: ignore[union-attr]
    assert storage.progress.snapshot(plan.job_id).failed == 1


def test_a_cancel_is_seen_by_the_check_after_the_steps_first_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan, storage, svc = _stored_job("c4ec0b0e0000")
    seen: list[str] = []

    def cancelled_meanwhile(ctx, prior, index):
        cancel_job(storage, plan.job_id, plan)
        ctx.check()
        seen.append("first check passed")
        with pytest.raises(Cancelled):
            ctx.check()
        seen.append("second check raised")
        raise Cancelled("stop here")

    monkeypatch.setitem(runs.RUN, "initial_translation", cancelled_meanwhile)
    with contextlib.suppress(Cancelled):
        execution.run_step(svc, stage("initial_translation"), plan.job_id, 0)
    assert seen == ["first check passed", "second check raised"]


def test_a_second_delivery_waits_for_the_first_ones_output() -> None:
    plan, _storage, svc = _stored_job("1ea5e0000001")
    produced: list[str] = []
    release = threading.Event()
    results: dict[str, EditorReview] = {}

    def deliver(name: str) -> None:
        def produce() -> EditorReview:
            produced.append(name)
            if name == "first":
                release.wait(5)
            return EditorReview(suggestions=f"from the {name} delivery")

        run = execution.JobRun(svc, plan.job_id)
        results[name] = run.once("editor_review", EditorReview, produce, 30)

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    while not produced:
        time.sleep(0.01)
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    time.sleep(0.2)
    assert "second" not in results  # still waiting: the first holds the lease
    release.set()
    first.join(5)
    second.join(5)
    assert produced == ["first"]  # one paid run
    assert results["second"].suggestions == "from the first delivery"


def test_a_lost_lease_stops_the_step_before_its_next_call() -> None:
    plan, storage, svc = _stored_job("1ea5e0000002", keeper=Keeper(every_s=0.05))
    run = execution.JobRun(svc, plan.job_id)

    def produce() -> EditorReview:
        holder = storage.leases.holder(plan.job_id, "editor_review")
        assert holder is not None
        storage.leases.release(plan.job_id, "editor_review", holder)
        storage.leases.acquire(plan.job_id, "editor_review", "someone-else", 10)
        time.sleep(0.25)  # the keeper's next renewal finds out
        run.check()
        return EditorReview(suggestions="never stored")

    with pytest.raises(Cancelled, match="taken over"):
        run.once("editor_review", EditorReview, produce, 30)
    assert storage.jobs.load_step(plan.job_id, "editor_review") is None
