"""Worker-side step execution on the memory store: the rules of
tests/integration/test_execution.py and test_leases.py, without redis-server (those
stay, for the real store and real processes)."""

from __future__ import annotations

import contextlib

import pytest

from vpsweb.config import load_config
from vpsweb.domain.models import CandidateResult
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


# A second delivery waiting, a lapsed lease taken over and a lost lease: run on this
# store and on Redis by tests/integration/test_leases.py.
