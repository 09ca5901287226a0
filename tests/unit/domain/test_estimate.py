"""The cost estimate: calls, tokens and cost per step and for the job, before any call.

Pure: a plan and the config in, figures out. Expected: each call asked once; worst
case: every re-ask, every answer at max_tokens; costs per currency.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.poems import FOG, JING_YE_SI
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.estimate import (
    REASONING,
    JobEstimate,
    budget_problems,
    estimate_job,
    money,
    over_budget,
)
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.tokens import estimate_tokens


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def _plan(cfg: AppConfig, **request: Any) -> JobPlan:
    options = {k: request.pop(k) for k in ("offline", "manual") if k in request}
    data = {"poem": FOG, "source_lang": "en", "target_lang": "zh-CN", **request}
    return build_plan(data, cfg, job_id="e57e57e57e57", **options)


def _by_step(estimate: JobEstimate) -> dict[str, Any]:
    return {s.step: s for s in estimate.steps}


def test_calls_per_step_and_for_the_job(cfg: AppConfig) -> None:
    plan = _plan(cfg, parallel_count=3)
    est = estimate_job(plan, cfg)
    steps = _by_step(est)
    assert [s.step for s in est.steps] == [
        "initial_translation",
        "evaluation",
        "editor_review",
        "translator_revision",
        "revision_check",
    ]
    calls = {k: s.expected.calls for k, s in steps.items()}
    assert calls == {
        "initial_translation": 3,
        "evaluation": plan.judge_orders,
        "editor_review": 1,
        "translator_revision": 1,
        "revision_check": plan.revision_check_orders,
    }
    assert est.expected.calls == sum(calls.values())
    # The worst case asks every call again for each parse (judge) retry, and once more
    # for a truncated answer.
    parse, judge = plan.parse_retries + 2, plan.judge_retries + 2
    assert steps["initial_translation"].worst.calls == 3 * parse
    assert steps["evaluation"].worst.calls == plan.judge_orders * judge
    assert steps["revision_check"].worst.calls == plan.revision_check_orders * judge
    assert est.worst.calls == sum(s.worst.calls for s in est.steps)
    for figures in (est.expected, est.worst):
        assert figures.tokens == figures.prompt_tokens + figures.completion_tokens


def test_tokens_grow_with_the_poem_and_the_candidates(cfg: AppConfig) -> None:
    small = estimate_job(_plan(cfg, parallel_count=2), cfg)
    more = estimate_job(_plan(cfg, parallel_count=4), cfg)
    longer = estimate_job(_plan(cfg, parallel_count=2, poem=FOG * 6), cfg)
    judge = lambda e: _by_step(e)["evaluation"].expected.prompt_tokens  # noqa: E731
    assert judge(more) > judge(small)  # the judge reads every candidate
    assert longer.expected.prompt_tokens > small.expected.prompt_tokens
    assert longer.expected.completion_tokens > small.expected.completion_tokens
    # A candidate's prompt holds at least the poem and the briefing.
    briefing = "A long note about the poem and its harbour. " * 40
    briefed = estimate_job(_plan(cfg, parallel_count=2, background_briefing=briefing), cfg)
    grown = _by_step(briefed)["initial_translation"].expected.prompt_tokens
    base = _by_step(small)["initial_translation"].expected.prompt_tokens
    assert grown - base == 2 * estimate_tokens(briefing)


def test_a_translation_is_expected_longer_than_its_poem_and_capped_by_max_tokens(
    cfg: AppConfig,
) -> None:
    plan = _plan(cfg, parallel_count=1, poem=JING_YE_SI)
    first = _by_step(estimate_job(plan, cfg))["initial_translation"].expected
    assert first.completion_tokens > estimate_tokens(JING_YE_SI) * 1.5
    capped = plan.model_copy(deep=True)
    capped.candidates[0].call.max_tokens = 50
    capped.steps["evaluation"].max_tokens = 60
    steps = _by_step(estimate_job(capped, cfg))
    assert steps["initial_translation"].expected.completion_tokens == 50
    assert steps["evaluation"].expected.completion_tokens == 60 * plan.judge_orders
    assert steps["initial_translation"].worst.completion_tokens == 50 * (plan.parse_retries + 2)


def test_cost_is_the_tokens_at_the_models_prices_offline_or_not(cfg: AppConfig) -> None:
    online = estimate_job(_plan(cfg, parallel_count=2, offline=False), cfg)
    offline = estimate_job(_plan(cfg, parallel_count=2, offline=True), cfg)
    assert offline.expected == online.expected and offline.offline  # the real model's prices
    for s in online.steps:
        (model,) = s.models
        price = cfg.models.models[model].price
        e = s.expected
        amount = e.prompt_tokens / 1000 * price.input_per_1k
        amount += e.completion_tokens / 1000 * price.output_per_1k
        assert e.cost == {price.currency: pytest.approx(amount)}
        if cfg.models.models[model].reasoning:  # the thinking is billed as answer tokens
            assert e.completion_tokens >= REASONING * e.calls
    total = sum(sum(s.expected.cost.values()) for s in online.steps)
    assert sum(online.expected.cost.values()) == pytest.approx(total)
    assert sum(online.worst.cost.values()) > 5 * total


def test_mixed_currencies_are_totalled_apart_and_cannot_be_capped(cfg: AppConfig) -> None:
    plan = _plan(cfg, parallel_count=2, max_cost=100.0)
    mixed = plan.model_copy(deep=True)
    mixed.candidates[1].call.model = "gpt-4o-mini"  # priced in USD; the rest in CNY
    est = estimate_job(mixed, cfg)
    assert est.currencies == ["CNY", "USD"]
    assert set(est.expected.cost) == {"CNY", "USD"}
    assert set(_by_step(est)["initial_translation"].expected.cost) == {"CNY", "USD"}
    assert " + " in money(est.expected.cost)
    (problem,) = budget_problems(est)
    assert problem.startswith("max_cost: this job's models are priced in CNY and USD")
    # Without a max_cost, mixed currencies are only two totals.
    unbudgeted = est.model_copy(update={"max_cost": None})
    assert budget_problems(unbudgeted) == []


def test_steps_a_person_answers_cost_nothing(cfg: AppConfig) -> None:
    est = estimate_job(_plan(cfg, parallel_count=2, manual=["evaluation"]), cfg)
    evaluation = _by_step(est)["evaluation"]
    assert evaluation.manual and evaluation.expected.calls == 0 and evaluation.worst.calls == 0
    assert evaluation.expected.cost == {}
    assert "manual" in est.text()


def test_the_budget_refuses_an_estimate_above_max_cost(cfg: AppConfig) -> None:
    est = estimate_job(_plan(cfg, parallel_count=3), cfg)
    cost = sum(est.expected.cost.values())
    assert budget_problems(est) == [] and over_budget(_plan(cfg, parallel_count=3), cfg) == []
    (line,) = over_budget(_plan(cfg, parallel_count=3, max_cost=cost / 3), cfg)
    assert line.startswith(f"max_cost: {cost / 3:g} CNY is below this job's estimated cost")
    assert f"({est.expected.calls} calls, ~" in line
    assert line.endswith("raise max_cost or lower parallel_count")
    # The expected figure is what counts, not the worst case.
    assert over_budget(_plan(cfg, parallel_count=3, max_cost=cost * 1.5), cfg) == []
    assert sum(est.worst.cost.values()) > cost * 1.5


def test_the_table_and_the_json(cfg: AppConfig) -> None:
    est = estimate_job(_plan(cfg, parallel_count=2, max_cost=1.0, offline=True), cfg)
    text = est.text()
    for s in est.steps:
        assert s.display_name in text
    assert "Job" in text and "worst cost" in text and "max_cost: 1 CNY" in text
    assert "offline" in text
    raw = est.model_dump_json()
    assert '"tokens":' in raw  # the computed total is in the JSON too
    assert JobEstimate.model_validate_json(raw) == est
