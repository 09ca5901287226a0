"""Worker-side execution in-process against a real Redis (no Celery in the way)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.helpers.redis_server import start_redis
from vpsweb.config import load_config
from vpsweb.domain.models import CandidateResult
from vpsweb.domain.plan import build_plan
from vpsweb.errors import Cancelled
from vpsweb.local.processes import RedisServer
from vpsweb.orchestrator import execution
from vpsweb.orchestrator import step as step_module
from vpsweb.orchestrator.lifecycle import cancel_job
from vpsweb.stages import runs
from vpsweb.stages.table import stage
from vpsweb.storage import connect

pytestmark = pytest.mark.integration


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own: on the session's, its workers' dispatchers would pick
    up these hand-made jobs and run their steps beside the test."""
    server = start_redis()
    yield server
    server.stop()


def _stored_job(url: str, job_id: str, *, n: int):
    """A job stored as submitted, and a worker's services with no LLM (the stages
    under test never call one)."""
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": n},
        load_config(),
        job_id=job_id,
        offline=True,
    )
    storage = connect(url)
    storage.jobs.create([plan])
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]
    return plan, storage, svc


def test_unexpected_error_fails_only_that_candidate(redis_server, monkeypatch):
    plan, storage, svc = _stored_job(redis_server.url, "e0ec0b0e0000", n=2)

    def broken(ctx, prior, index):
        raise RuntimeError("template exploded")

    monkeypatch.setitem(runs.RUN, "initial_translation", broken)
    ref = execution.run_step(svc, stage("initial_translation"), plan.job_id, 1)
    assert ref == {"job_id": plan.job_id, "index": 1, "status": "failed"}
    stored = CandidateResult.model_validate_json(storage.jobs.load_step(plan.job_id, "candidate-1"))
    assert stored.error == "internal error: RuntimeError: template exploded"
    assert storage.jobs.status(plan.job_id).value == "running"  # the job goes on
    assert storage.progress.snapshot(plan.job_id).failed == 1


def test_first_cancel_check_reuses_the_steps_status_read_and_the_next_reads(
    redis_server, monkeypatch
):
    """The step's first batch has just read the status: the check before its first LLM
    call does not read it again (one round trip per call saved); every later check does,
    so a cancel is still seen before the next call."""
    # "Just read" is 50 ms in production; on a loaded test machine the cancel_job below
    # can take longer than that. What is tested is that the read stands for one check only.
    monkeypatch.setattr(step_module, "FRESH_STATUS_S", 10.0)
    plan, storage, svc = _stored_job(redis_server.url, "c4ec0b0e0000", n=1)
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


def _round_trips(monkeypatch) -> list[int]:
    """Count what this thread sends to Redis: one packed send per command or pipeline."""
    import threading

    from redis.connection import AbstractConnection

    sent: list[int] = []
    me = threading.get_ident()
    original = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        if threading.get_ident() == me:
            sent.append(1)
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def test_a_step_costs_two_round_trips(redis_server, monkeypatch):
    """The fast path (commits 1a1470e and 64c09d6): one pipelined batch before the stage
    and one after it; its plan is cached by the worker."""
    plan, _, svc = _stored_job(redis_server.url, "2a7b0e0e0000", n=3)
    first = stage("initial_translation")

    def instant(ctx, prior, index):  # no LLM call, hence no cancel check
        return runs.lost(first, ctx.plan, index, "stub")

    monkeypatch.setitem(runs.RUN, first.name, instant)
    step = first
    execution.run_step(svc, step, plan.job_id, 0)  # reads and caches the plan
    sent = _round_trips(monkeypatch)
    execution.run_step(svc, step, plan.job_id, 1)
    assert len(sent) == 2
    sent.clear()
    execution.run_step(svc, step, plan.job_id, 1)  # a redelivery of a stored step
    # The batch finds the output (and the lease it took, released), the end is
    # recorded again (counted once): the rare path, one command at a time.
    assert len(sent) == 3
