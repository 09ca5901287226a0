"""Worker-side step execution, in-process with no Celery in the way, on the in-memory
store (milliseconds) and on a real Redis: one broken candidate fails alone, and a
cancel is seen by the next check. Leases and redeliveries: test_leases.py in the
integration suite; round trips per step: test_execution.py there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.helpers.redis_server import start_redis
from vpsweb.config import load_config
from vpsweb.domain.models import CandidateResult
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.errors import Cancelled
from vpsweb.orchestrator import execution
from vpsweb.orchestrator import step_check as step_module
from vpsweb.orchestrator.lifecycle import cancel_job
from vpsweb.stages import runs
from vpsweb.stages.table import stage
from vpsweb.storage import Storage, connect
from vpsweb.storage.memory import memory_storage


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "memory":
        yield memory_storage()
        return
    server = start_redis()  # its own: session workers would run these hand-made jobs
    store = connect(server.url)
    yield store
    store.close()
    server.stop()


def _stored_job(storage: Storage, job_id: str, *, n: int) -> tuple[JobPlan, execution.Services]:
    """A job stored as submitted, and a worker's services with no LLM (the stages
    under test never call one)."""
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": n},
        load_config(),
        job_id=job_id,
        offline=True,
    )
    storage.jobs.create([plan])
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]
    return plan, svc


def test_unexpected_error_fails_only_that_candidate(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, svc = _stored_job(storage, "e0ec0b0e0000", n=2)

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


def test_first_cancel_check_reuses_the_steps_status_read_and_the_next_reads(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step's first batch has just read the status: the check before its first LLM
    call does not read it again (one round trip per call saved); every later check does,
    so a cancel is still seen before the next call."""
    # "Just read" is 50 ms in production; on a loaded test machine the cancel_job below
    # can take longer than that. What is tested is that the read stands for one check only.
    monkeypatch.setattr(step_module, "FRESH_STATUS_S", 10.0)
    plan, svc = _stored_job(storage, "c4ec0b0e0000", n=1)
    seen: list[str] = []

    def cancelled_meanwhile(ctx, prior, index):
        cancel_job(storage, plan.job_id, plan)  # after the step's batch read "running"
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
