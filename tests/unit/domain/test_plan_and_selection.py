"""Cost arithmetic, job plans (variants, modes, offline routing) and candidate selection."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.helpers.poems import JING_YE_SI as POEM
from tests.helpers.stage_calls import cost
from vpsweb.config import AppConfig, load_config
from vpsweb.config.schema import Price
from vpsweb.domain.models import (
    CandidateResult,
    ModelInfo,
    StepMetrics,
    Usage,
    WorkflowMode,
)
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.result import compute_totals
from vpsweb.domain.selection import fallback_select, map_presented_id, presentation_order
from vpsweb.errors import RequestInvalid
from vpsweb.llm.endpoints import Endpoint, resolve


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def plan_for(cfg: AppConfig, *, offline: bool = True, **changes: Any) -> JobPlan:
    data: dict[str, Any] = {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en"}
    data.update(changes)
    return build_plan(data, cfg, job_id="t", offline=offline)


def endpoint(price: Price) -> Endpoint:
    return Endpoint(
        info=ModelInfo(model="m", provider="p", api_model="m"),
        base_url="http://x/v1",
        api_key_env=None,
        price=price,
        offline=False,
    )


# --- cost ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "completion", "price_in", "price_out", "expected"),
    [
        (1000, 1000, 0.002, 0.003, 0.005),
        (1500, 500, 0.002, 0.003, 0.0045),
        (0, 0, 0.002, 0.003, 0.0),
        (2000, 0, 0.0024, 0.0096, 0.0048),
        (0, 2500, 0.0024, 0.0096, 0.024),
        (123, 456, 0.00015, 0.0006, 0.00029205),
        (1, 1, 0.0, 0.0, 0.0),
    ],
)
def test_endpoint_cost(
    prompt: int, completion: int, price_in: float, price_out: float, expected: float
) -> None:
    ep = endpoint(Price(input_per_1k=price_in, output_per_1k=price_out, currency="CNY"))
    usage = ep.cost(prompt, completion)
    assert usage.prompt_tokens == prompt
    assert usage.completion_tokens == completion
    assert usage.total_tokens == prompt + completion
    assert usage.currency == "CNY"
    assert usage.cost == expected


def test_cost_uses_the_planned_models_price(cfg: AppConfig) -> None:
    plan = plan_for(cfg, offline=False)
    # hybrid: deepseek-chat (0.002 / 0.003 CNY per 1K) translates
    usage = cost(plan.candidates[0].call, 3000, 2000)
    assert (usage.cost, usage.currency) == (0.012, "CNY")


def test_usage_addition() -> None:
    a = Usage(prompt_tokens=100, completion_tokens=20, cost=0.1, currency="CNY")
    b = Usage(prompt_tokens=50, completion_tokens=5, cost=0.2, currency="CNY")
    total = a + b
    assert total == Usage(prompt_tokens=150, completion_tokens=25, cost=0.3, currency="CNY")
    assert total.total_tokens == 175
    # The operands are not changed.
    assert a.prompt_tokens == 100
    assert b.cost == 0.2


def test_usage_addition_from_zero_takes_the_billed_currency() -> None:
    billed = Usage(prompt_tokens=10, completion_tokens=10, cost=0.5, currency="CNY")
    assert (Usage() + billed).currency == "CNY"
    assert (billed + Usage()).currency == "CNY"
    assert (Usage() + billed).cost == 0.5


def test_usage_addition_refuses_mixed_currencies() -> None:
    with pytest.raises(ValueError, match="cannot add costs in USD and CNY"):
        Usage(cost=1.0, currency="USD") + Usage(cost=1.0, currency="CNY")


def _metrics(prompt: int, completion: int, cost: float, currency: str, attempts: int):
    return StepMetrics(
        model=ModelInfo(model="m", provider="p", api_model="m"),
        usage=Usage(
            prompt_tokens=prompt, completion_tokens=completion, cost=cost, currency=currency
        ),
        attempts=attempts,
    )


def test_compute_totals_over_several_steps_per_currency() -> None:
    metrics = [
        _metrics(100, 50, 0.35, "CNY", 1),
        _metrics(200, 10, 0.43, "CNY", 2),  # a parse retry: two billed calls
        _metrics(300, 30, 0.065, "USD", 1),
        _metrics(0, 0, 0.0, "EUR", 4),  # a failed candidate: calls made, nothing billed
        _metrics(5, 5, 0.0, "USD", 1),  # a free local model
    ]
    totals = compute_totals(metrics, duration_s=12.34567)
    assert totals.prompt_tokens == 605
    assert totals.completion_tokens == 95
    assert totals.total_tokens == 700
    assert totals.cost == {"CNY": 0.78, "USD": 0.065}
    assert totals.llm_calls == 9
    assert totals.duration_s == 12.346


def test_compute_totals_of_nothing() -> None:
    totals = compute_totals([], duration_s=0)
    assert (totals.total_tokens, totals.cost, totals.llm_calls) == (0, {}, 0)


# --- plans ----------------------------------------------------------------------------------


def test_variants_cycle_over_the_candidates(cfg: AppConfig) -> None:
    plan = plan_for(cfg, parallel_count=5)
    assert plan.parallel_count == 5
    assert plan.request.parallel_count == 5
    assert [c.index for c in plan.candidates] == [0, 1, 2, 3, 4]
    assert [c.variant for c in plan.candidates] == [
        "literal",
        "lyric",
        "musical",
        "literal-2",
        "lyric-2",
    ]
    variants = {v.name: v for v in cfg.pipeline.variants}
    repeat = cfg.pipeline.variant_repeat
    for cand in plan.candidates:
        name, _, take = cand.variant.partition("-")
        variant = variants[name]
        assert cand.call.step == "initial_translation"
        if not take:
            assert cand.hint == variant.hint
            assert cand.call.temperature == variant.temperature
        else:  # a second take: a stated change and another temperature
            assert cand.hint == f"{variant.hint} {repeat.hint}"
            assert cand.call.temperature == round(variant.temperature + repeat.temperature_step, 3)
    assert [c.call.temperature for c in plan.candidates] == [0.4, 0.8, 0.9, 0.5, 0.9]
    # No two candidates send the same prompt at the same settings.
    assert len({(c.hint, c.call.temperature, c.call.model) for c in plan.candidates}) == 5


def test_variant_without_temperature_uses_the_step_temperature(cfg: AppConfig) -> None:
    variants = [v.model_copy(update={"temperature": None}) for v in cfg.pipeline.variants]
    pipeline = cfg.pipeline.model_copy(update={"variants": variants})
    other = AppConfig(cfg.config_dir, cfg.models, pipeline, cfg.prompts)
    plan = plan_for(other, parallel_count=2)
    assert [c.call.temperature for c in plan.candidates] == [0.7, 0.7]


def test_variant_model_override(cfg: AppConfig) -> None:
    variants = list(cfg.pipeline.variants)
    variants[1] = variants[1].model_copy(update={"model": "qwen-max"})
    pipeline = cfg.pipeline.model_copy(update={"variants": variants})
    other = AppConfig(cfg.config_dir, cfg.models, pipeline, cfg.prompts)
    plan = plan_for(other, parallel_count=3, offline=False)
    assert [c.call.model for c in plan.candidates] == [
        "deepseek-chat",
        "qwen-max",
        "deepseek-chat",
    ]
    # The worker resolves where the call goes and what it costs from its own config.
    ep = resolve(cfg.models, plan.candidates[1].call)
    assert ep.api_key_env == "DASHSCOPE_API_KEY"
    assert ep.price.output_per_1k == 0.0096


@pytest.mark.parametrize(
    ("mode", "expected"), [("hybrid", 3), ("reasoning", 2), ("non_reasoning", 3)]
)
def test_default_parallel_count_per_mode(cfg: AppConfig, mode: str, expected: int) -> None:
    plan = plan_for(cfg, workflow_mode=mode)
    assert plan.parallel_count == expected
    assert len(plan.candidates) == expected
    assert plan.request.parallel_count == expected


def test_explicit_parallel_count_beats_the_mode_default(cfg: AppConfig) -> None:
    plan = plan_for(cfg, workflow_mode="reasoning", parallel_count=4)
    assert plan.parallel_count == 4
    assert len(plan.candidates) == 4


def test_invalid_request_builds_no_plan(cfg: AppConfig) -> None:
    with pytest.raises(RequestInvalid, match="parallel_count"):
        plan_for(cfg, parallel_count=9)


def test_offline_plan_routes_to_the_simulator_but_keeps_the_real_price(cfg: AppConfig) -> None:
    online = plan_for(cfg, offline=False)
    offline = plan_for(cfg, offline=True)
    sim_provider = cfg.models.providers["simulator"]
    deepseek_chat = cfg.models.models["deepseek-chat"]
    assert offline.offline is True
    assert online.offline is False
    calls = [
        (offline.candidates[0].call, online.candidates[0].call, "deepseek-chat"),
        (offline.steps["evaluation"], online.steps["evaluation"], "deepseek-reasoner"),
        (offline.steps["editor_review"], online.steps["editor_review"], "deepseek-reasoner"),
        (
            offline.steps["translator_revision"],
            online.steps["translator_revision"],
            "deepseek-chat",
        ),
    ]
    for off_call, on_call, model in calls:
        assert off_call.offline and not on_call.offline
        off, on = resolve(cfg.models, off_call, {}), resolve(cfg.models, on_call, {})
        assert off.info.provider == "simulator"
        assert off.base_url == sim_provider.base_url
        assert off.api_key_env is None
        # Same model identity (so the simulator answers in its style) and same price.
        assert off.info.model == on.info.model == model
        assert off.info.api_model == on.info.api_model
        assert off.info.reasoning == on.info.reasoning
        assert off.price == on.price == cfg.models.models[model].price
        assert on.info.provider == "deepseek"
        assert on.base_url == "https://api.deepseek.com/v1"
        assert on.api_key_env == "DEEPSEEK_API_KEY"
    cheap = resolve(cfg.models, offline.candidates[0].call, {})
    assert cheap.price.currency == deepseek_chat.price.currency == "CNY"
    assert cheap.price != cfg.models.models["simulator"].price


def test_offline_defaults_to_the_environment(cfg: AppConfig, monkeypatch) -> None:
    data = {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en"}
    monkeypatch.setenv("VPSWEB_OFFLINE", "1")
    assert build_plan(data, cfg, job_id="t").offline is True
    monkeypatch.setenv("VPSWEB_OFFLINE", "no")
    assert build_plan(data, cfg, job_id="t").offline is False


@pytest.mark.parametrize(
    ("mode", "translator", "judge", "editor", "reviser"),
    [
        ("hybrid", "deepseek-chat", "deepseek-reasoner", "deepseek-reasoner", "deepseek-chat"),
        (
            "reasoning",
            "deepseek-reasoner",
            "deepseek-reasoner",
            "deepseek-reasoner",
            "deepseek-reasoner",
        ),
        ("non_reasoning", "deepseek-chat", "deepseek-chat", "deepseek-chat", "deepseek-chat"),
    ],
)
def test_workflow_mode_picks_the_modes_models(
    cfg: AppConfig, mode: str, translator: str, judge: str, editor: str, reviser: str
) -> None:
    plan = plan_for(cfg, workflow_mode=mode)
    assert plan.workflow_mode == WorkflowMode(mode)
    assert {c.call.model for c in plan.candidates} == {translator}
    assert plan.steps["evaluation"].model == judge
    assert plan.steps["editor_review"].model == editor
    assert plan.steps["translator_revision"].model == reviser
    steps = cfg.pipeline.modes[WorkflowMode(mode)].steps
    assert plan.steps["evaluation"].temperature == steps["evaluation"].temperature
    assert plan.steps["editor_review"].max_tokens == steps["editor_review"].max_tokens
    assert plan.steps["translator_revision"].timeout_s == steps["translator_revision"].timeout_s


def test_reasoning_mode_translator_is_a_reasoning_model(cfg: AppConfig) -> None:
    plan = plan_for(cfg, workflow_mode="reasoning")
    info = resolve(cfg.models, plan.candidates[0].call).info
    assert info.model == "deepseek-reasoner"
    assert info.api_model == "deepseek-reasoner"
    assert info.reasoning is True
    hybrid = plan_for(cfg, workflow_mode="hybrid")
    assert resolve(cfg.models, hybrid.candidates[0].call).info.reasoning is False


def test_plan_resolves_strategy_and_evaluation_settings(cfg: AppConfig) -> None:
    plan = plan_for(cfg, strategy={"repetition_policy": "adaptive", "few_shots": "ex"})
    assert plan.strategy.repetition_policy == "adaptive"
    assert plan.strategy.few_shots == "ex"
    assert plan.strategy.adaptation_level == "balanced"
    assert plan.strategy.prosody_target == "keep the source's line count and stanza breaks"
    assert [c.name for c in plan.criteria] == ["fidelity", "imagery", "musicality", "fluency"]
    assert (plan.parse_retries, plan.judge_retries) == (1, 1)


def test_plan_round_trips_through_json(cfg: AppConfig) -> None:
    plan = plan_for(cfg, parallel_count=4, workflow_mode="reasoning")
    assert JobPlan.model_validate_json(plan.model_dump_json()) == plan


def test_plan_names_models_never_endpoints_or_keys(cfg: AppConfig, monkeypatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-secret-do-not-leak")
    text = plan_for(cfg, offline=False).model_dump_json()
    assert "sk-secret-do-not-leak" not in text
    # Not even where to send it, or which variable holds it: workers decide both.
    assert "DEEPSEEK_API_KEY" not in text
    assert "api.deepseek.com" not in text
    assert '"model":"deepseek-chat"' in text


# --- presentation order -------------------------------------------------------------------


def test_presentation_order_is_deterministic_per_seed() -> None:
    indexes = [0, 1, 2, 3, 4, 5]
    first = presentation_order(indexes, "job-42:evaluation")
    assert presentation_order(indexes, "job-42:evaluation") == first
    assert presentation_order(list(reversed(indexes)), "job-42:evaluation") == first


@pytest.mark.parametrize("indexes", [[0], [0, 2], [3, 1, 4], [0, 1, 2, 3, 4, 5, 6, 7]])
def test_presentation_order_is_a_permutation(indexes: list[int]) -> None:
    for seed in ("a", "b", "c", "job:evaluation"):
        order = presentation_order(indexes, seed)
        assert sorted(order) == sorted(indexes)
        assert len(order) == len(indexes)


def test_presentation_order_does_not_mutate_its_input() -> None:
    indexes = [2, 0, 1]
    presentation_order(indexes, "s")
    assert indexes == [2, 0, 1]


def test_presentation_order_differs_across_seeds() -> None:
    indexes = [0, 1, 2, 3]
    orders = {tuple(presentation_order(indexes, f"job-{i}")) for i in range(50)}
    assert len(orders) > 5
    # Some seed puts candidate 0 somewhere other than first (no position bias to candidate 0).
    firsts = {order[0] for order in orders}
    assert firsts == {0, 1, 2, 3}


# --- mapping the judge's answer back --------------------------------------------------------


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_map_presented_id_for_every_permutation(order: tuple[int, ...]) -> None:
    shown = list(order)
    for intended in range(4):
        presented_id = shown.index(intended) + 1  # what a judge who wants `intended` answers
        assert map_presented_id(presented_id, shown) == intended


def test_map_presented_id_with_gaps_in_the_indexes() -> None:
    order = [4, 0, 2]  # candidates 1 and 3 failed
    assert [map_presented_id(i, order) for i in (1, 2, 3)] == [4, 0, 2]


@pytest.mark.parametrize("bad", [0, -1, 5, 100])
def test_out_of_range_presented_id_raises(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"judge chose id {bad}, but only 1\.\.4 were shown"):
        map_presented_id(bad, [2, 0, 3, 1])


# --- fallback rule --------------------------------------------------------------------------


def cand(index: int, translation: str) -> CandidateResult:
    return CandidateResult(index=index, variant="v", status="succeeded", translation=translation)


def test_fallback_select_picks_the_closest_line_count() -> None:
    source = "a\nb\n\nc\nd"  # four non-empty lines
    survivors = [
        cand(0, "one line only"),
        cand(1, "1\n2\n3\n4\n5\n6"),
        cand(2, "1\n2\n\n3"),  # 3 lines: closest
    ]
    assert fallback_select(survivors, source).index == 2


def test_fallback_select_ignores_blank_lines() -> None:
    source = "a\nb\n\nc\nd"
    survivors = [cand(0, "1\n2\n3"), cand(1, "1\n\n2\n\n\n3\n   \n4")]
    assert fallback_select(survivors, source).index == 1


def test_fallback_select_breaks_ties_by_lowest_index() -> None:
    source = "a\nb\nc\nd"
    survivors = [cand(5, "1\n2\n3"), cand(3, "1\n2\n3\n4\n5"), cand(4, "1\n2\n3")]
    # All are one line off; the lowest index wins whatever the list order.
    assert fallback_select(survivors, source).index == 3


def test_fallback_select_without_survivors_raises() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        fallback_select([], "a")
