"""A job's max_cost while it runs: once its spend (the cost of its stored step outputs)
reaches max_cost, the check before (and during) every LLM call raises BudgetReached,
in one read with the status, also under a straggler quorum; below it, calls go on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vpsweb.config import load_config
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.errors import BudgetReached, Cancelled
from vpsweb.orchestrator import execution
from vpsweb.orchestrator import step_check as step_module
from vpsweb.stages import runs
from vpsweb.stages.table import stage
from vpsweb.storage import Storage
from vpsweb.storage.memory import memory_storage


def _job(storage: Storage, job_id: str, **request: Any) -> tuple[JobPlan, execution.Services]:
    data = {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", **request}
    plan = build_plan(data, load_config(), job_id=job_id, offline=True)
    storage.jobs.create([plan])
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]
    return plan, svc


def _paid(storage: Storage, job_id: str, key: str, cost: float) -> None:
    payload = json.dumps({"metrics": {"usage": {"cost": cost, "currency": "CNY"}}})
    storage.steps.finish(job_id, key, payload, owner="x", ttl=60, end=None, once="", item=None)


def _paid_by(storage: Storage, job_id: str, key: str, payload: str, batch_id: str) -> None:
    storage.steps.finish(
        job_id, key, payload, owner="x", ttl=60, end=None, once="", item=None, batch_id=batch_id
    )


def _checking(calls: list[str]):
    def run(ctx, prior, index):
        ctx.check()  # what the LLM client does before each call
        calls.append(f"call {index}")
        raise Cancelled("stop here: the test makes no call")

    return run


@pytest.mark.parametrize("straggler", ["wait_all", "quorum"])
def test_no_new_call_once_the_spend_reaches_max_cost(
    monkeypatch: pytest.MonkeyPatch, straggler: str
) -> None:
    # The step's first read does not stand for a budget check: it read no spend.
    monkeypatch.setattr(step_module, "FRESH_STATUS_S", 10.0)
    storage = memory_storage()
    plan, svc = _job(storage, "b0d6e7000001", parallel_count=4, max_cost=0.01, straggler=straggler)
    calls: list[str] = []
    monkeypatch.setitem(runs.RUN, "initial_translation", _checking(calls))
    _paid(storage, plan.job_id, "candidate-1", 0.006)
    with pytest.raises(Cancelled, match="stop here"):  # below max_cost: the call goes on
        execution.run_step(svc, stage("initial_translation"), plan.job_id, 0)
    _paid(storage, plan.job_id, "candidate-2", 0.005)
    with pytest.raises(BudgetReached) as info:
        execution.run_step(svc, stage("initial_translation"), plan.job_id, 3)
    assert calls == ["call 0"]
    assert str(info.value) == "budget reached: spent 0.011 of max_cost 0.01 CNY"
    assert (info.value.max_cost, info.value.currency) == (0.01, "CNY")
    # Not a lost candidate: nothing is stored for it, and the stage never saw an error.
    assert storage.jobs.load_step(plan.job_id, "candidate-3") is None


def test_a_job_without_max_cost_is_never_stopped_for_its_spend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = memory_storage()
    plan, svc = _job(storage, "b0d6e7000002", parallel_count=2)
    calls: list[str] = []
    monkeypatch.setitem(runs.RUN, "initial_translation", _checking(calls))
    _paid(storage, plan.job_id, "candidate-1", 1000.0)
    with pytest.raises(Cancelled, match="stop here"):
        execution.run_step(svc, stage("initial_translation"), plan.job_id, 0)
    assert calls == ["call 0"]


@pytest.mark.parametrize("straggler", ["wait_all", "quorum"])
def test_no_new_call_once_the_batch_spend_reaches_its_budget(
    monkeypatch: pytest.MonkeyPatch, straggler: str
) -> None:
    """A batch's budget: any of its jobs' stored steps add to the batch's spend; once it
    reaches the budget, no job of the batch makes a new call (BatchBudgetReached, a
    BudgetReached naming the batch). The budget is read from the batch, so a resume
    that raises it lets the calls go on."""
    from vpsweb.client.sync import Client

    monkeypatch.setattr(step_module, "FRESH_STATUS_S", 10.0)
    client = Client(redis_url="redis://127.0.0.1:9/0", config=load_config())
    storage = client.storage = memory_storage()
    request = {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "straggler": straggler}
    batch = client.submit_batch(
        [request | {"parallel_count": 4}, request | {"parallel_count": 2}], budget=1.0, offline=True
    )
    first, second = batch.record.job_ids
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]
    calls: list[str] = []
    monkeypatch.setitem(runs.RUN, "initial_translation", _checking(calls))
    payload = json.dumps({"metrics": {"usage": {"cost": 0.6, "currency": "CNY"}}})
    _paid_by(storage, first, "candidate-1", payload, batch.id)
    with pytest.raises(Cancelled, match="stop here"):  # 0.6 of 1.0: the call goes on
        execution.run_step(svc, stage("initial_translation"), second, 0)
    _paid_by(storage, first, "candidate-2", payload, batch.id)
    with pytest.raises(BudgetReached) as info:  # the other job's spend stops this one
        execution.run_step(svc, stage("initial_translation"), second, 1)
    assert calls == ["call 0"]
    assert str(info.value).startswith(f"batch budget reached: batch {batch.id} spent 1.2 of")
    assert "its budget 1 CNY" in str(info.value)
    # A resume with a higher budget (nothing failed yet): the next call goes on.
    assert batch.resume(budget=5.0).record.budget == 5.0 and batch.record.version == 2
    with pytest.raises(Cancelled, match="stop here"):
        execution.run_step(svc, stage("initial_translation"), second, 1)
    assert calls == ["call 0", "call 1"]
