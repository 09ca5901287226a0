"""max_cost at submission: a job whose estimated cost is above it is refused before
anything is written, on every path (submit, submit_many, the async client); and
``estimate`` says what a submission would cost without submitting anything."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers.poems import FOG
from vpsweb.client.aio import AsyncClient
from vpsweb.client.batch_plans import plan_batch
from vpsweb.client.core import estimate_request, plan_job
from vpsweb.client.sync import Client
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.estimate import JobEstimate
from vpsweb.errors import RequestInvalid
from vpsweb.storage.memory import memory_storage

UNREACHABLE = "redis://127.0.0.1:9/0"  # nothing may be read or written
REQUEST = {"poem": FOG, "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 3}


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


@pytest.fixture(scope="module")
def cost(cfg: AppConfig) -> float:
    return sum(estimate_request(REQUEST, cfg).expected.cost.values())


def test_a_max_cost_below_the_estimate_is_refused_with_both_figures(
    cfg: AppConfig, cost: float
) -> None:
    with pytest.raises(RequestInvalid) as info:
        plan_job({**REQUEST, "max_cost": cost / 2}, cfg)
    (line,) = info.value.errors
    assert line.startswith(f"max_cost: {cost / 2:g} CNY is below this job's estimated cost")
    assert "calls, ~" in line and "raise max_cost or lower parallel_count" in line
    plan = plan_job({**REQUEST, "max_cost": cost * 1.01}, cfg)
    assert plan.request.max_cost == cost * 1.01
    assert plan_job(REQUEST, cfg).request.max_cost is None  # no max_cost: no limit


def test_a_batch_names_each_request_over_its_budget_and_plans_none(
    cfg: AppConfig, cost: float
) -> None:
    requests = [REQUEST, {**REQUEST, "max_cost": cost / 10}, {**REQUEST, "max_cost": cost * 2}]
    with pytest.raises(RequestInvalid) as info:
        plan_batch(requests, cfg)
    (line,) = info.value.errors
    assert line.startswith("request 1: max_cost: ")
    assert len(plan_batch([REQUEST, requests[2]], cfg)) == 2


def test_submit_and_submit_many_refuse_before_writing(cfg: AppConfig, cost: float) -> None:
    client = Client(redis_url=UNREACHABLE, config=cfg)
    client.storage = memory_storage()
    try:
        with pytest.raises(RequestInvalid, match="is below this job's estimated cost"):
            client.submit(**REQUEST, max_cost=cost / 2)
        with pytest.raises(RequestInvalid, match="request 0: max_cost"):
            client.submit_many([{**REQUEST, "max_cost": cost / 2}, REQUEST])
        assert client.storage.jobs.recent_jobs() == []
        job = client.submit(**REQUEST, max_cost=cost * 2)
        assert client.storage.jobs.recent_jobs() == [job.id]
    finally:
        client.close()


def test_the_async_client_refuses_the_same(cfg: AppConfig, cost: float) -> None:
    client = AsyncClient(redis_url=UNREACHABLE, config=cfg)
    with pytest.raises(RequestInvalid, match="is below this job's estimated cost"):
        asyncio.run(client.submit(**REQUEST, max_cost=cost / 2))
    with pytest.raises(RequestInvalid, match="request 0: max_cost"):
        asyncio.run(client.submit_many([{**REQUEST, "max_cost": cost / 2}]))


def test_estimate_needs_no_store_and_is_not_refused(cfg: AppConfig, cost: float) -> None:
    sync = Client(redis_url=UNREACHABLE, config=cfg)
    aio = AsyncClient(redis_url=UNREACHABLE, config=cfg)
    low = cost / 2
    mine = sync.estimate(**REQUEST, max_cost=low, offline=True)
    theirs = asyncio.run(aio.estimate(**REQUEST, max_cost=low, offline=True))
    assert isinstance(mine, JobEstimate) and mine.max_cost == low and mine.offline
    assert mine.expected == theirs.expected and mine.worst == theirs.worst
    assert sum(mine.expected.cost.values()) == pytest.approx(cost)
    with pytest.raises(RequestInvalid, match="parallel_count"):
        sync.estimate(**{**REQUEST, "parallel_count": 99})
    sync.close()


def test_estimate_takes_what_submit_takes() -> None:
    import inspect

    for cls in (Client, AsyncClient):
        submit = inspect.signature(cls.submit).parameters.values()
        estimate = inspect.signature(cls.estimate).parameters.values()
        assert [(p.name, p.kind, p.default) for p in submit] == [
            (p.name, p.kind, p.default) for p in estimate
        ], cls.__name__
