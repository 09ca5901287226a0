"""Worker-side execution in-process against a real Redis (no Celery in the way): what a
step costs in round trips. Its rules on both stores: tests/unit/orchestrator/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.redis_server import start_redis
from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.local.processes import RedisServer
from vpsweb.orchestrator import execution
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
