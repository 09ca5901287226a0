"""Prompt rendering: every template renders, missing variables fail loudly, and what the
user chose (strategy dials, the variant's hint, the candidates) really reaches the LLM."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.poems import JING_YE_SI as POEM
from tests.helpers.stage_calls import (
    context,
    cost,
    editor_review,
    evaluate,
    translate_candidate,
    translator_revision,
)
from vpsweb.config import AppConfig, load_config
from vpsweb.config.prompt_check import check_prompts, sample_variables, variables_of
from vpsweb.config.schema import GateSettings
from vpsweb.domain.models import CandidateResult, EditorReview
from vpsweb.domain.plan import JobPlan, StepCall, build_plan
from vpsweb.domain.prompts import PromptFile, PromptPair, RenderedPrompt, render
from vpsweb.errors import PromptRenderError
from vpsweb.llm.client import Completion
from vpsweb.stages.shared import StageContext
from vpsweb.stages.table import STAGE_NAMES

ANSWERS = {
    "initial_translation": "<initial_translation>line</initial_translation>",
    "evaluation": "<selected_index>1</selected_index><rationale>r</rationale>",
    "editor_review": "<editor_suggestions>1. [L1] ok</editor_suggestions>",
    "translator_revision": "<revised_translation>line</revised_translation>",
}


class RecordingLLM:
    """Answers every step with a minimal valid answer and keeps the rendered messages."""

    def __init__(self) -> None:
        self.messages: list[list[dict[str, str]]] = []

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion:
        self.messages.append(messages)
        return Completion(
            content=ANSWERS[call.step],
            reasoning_content=None,
            usage=cost(call, 10, 10),
            latency_s=0.0,
            attempts=1,
        )

    @property
    def system(self) -> str:
        return self.messages[-1][0]["content"]

    @property
    def user(self) -> str:
        return self.messages[-1][1]["content"]

    @property
    def text(self) -> str:
        return self.system + "\n" + self.user


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def make_plan(cfg: AppConfig, **changes: Any) -> JobPlan:
    data: dict[str, Any] = {
        "poem": POEM,
        "source_lang": "zh-CN",
        "target_lang": "en",
        "title": "静夜思",
        "author": "李白",
    }
    data.update(changes)
    plan = build_plan(data, cfg, job_id="t", offline=True)
    # One call per stage, so that each test reads the one prompt it rendered.
    return plan.model_copy(update={"judge_orders": 1, "gates": GateSettings(enabled=False)})


def run(cfg: AppConfig, plan: JobPlan, stage: Callable[[StageContext], object]) -> RecordingLLM:
    llm = RecordingLLM()
    stage(context(cfg, plan, llm))
    assert len(llm.messages) == 1
    return llm


DIALS = {
    "adaptation_level": "domesticating",
    "repetition_policy": "adaptive",
    "additions_policy": "allow_with_alt",
    "prosody_target": "iambic tetrameter in rhymed couplets",
    "few_shots": "EXAMPLE: 春眠不觉晓 -> Spring sleep, unaware of dawn",
}

CHOSEN = CandidateResult(
    index=1,
    variant="lyric",
    status="succeeded",
    translated_title="Quiet Night Thought",
    translation="CHOSEN-LINE-ONE\nCHOSEN-LINE-TWO",
    notes="CHOSEN-NOTES",
)


# --- rendering ----------------------------------------------------------------------------


def _pairs(cfg: AppConfig) -> list[tuple[str, str, PromptPair]]:
    pairs = []
    for step, prompt in cfg.prompts.items():
        pairs.append((step, "default", prompt.for_model(reasoning=False)))
        if prompt.reasoning is not None:
            pairs.append((step, "reasoning", prompt.reasoning))
    return pairs


def test_every_steps_prompt_renders_with_sample_variables(cfg: AppConfig) -> None:
    pairs = _pairs(cfg)
    assert {step for step, _, _ in pairs} == set(STAGE_NAMES)
    assert ("initial_translation", "reasoning") in {(s, k) for s, k, _ in pairs}
    for step, kind, pair in pairs:
        variables = sample_variables(step)
        assert set(variables) == set(variables_of(step))
        rendered = render(pair, variables)
        assert isinstance(rendered, RenderedPrompt)
        where = f"{step}/{kind}"
        assert rendered.system and rendered.user, where
        for leftover in ("{{", "}}", "{%", "%}"):
            assert leftover not in rendered.system + rendered.user, where
        assert "Chinese" in rendered.system + rendered.user, where  # target_lang sample
        assert rendered.system == rendered.system.strip()
        assert rendered.messages() == [
            {"role": "system", "content": rendered.system},
            {"role": "user", "content": rendered.user},
        ]


def test_shipped_prompts_pass_the_config_check(cfg: AppConfig) -> None:
    assert check_prompts(cfg.config_dir, cfg.prompts, cfg.pipeline, cfg.models) == []


@pytest.mark.parametrize("step", list(STAGE_NAMES))
def test_a_missing_variable_raises_prompt_render_error(cfg: AppConfig, step: str) -> None:
    pair = cfg.prompts[step].for_model(reasoning=False)
    variables = sample_variables(step)
    del variables["target_lang"]
    with pytest.raises(PromptRenderError, match="'target_lang' is undefined"):
        render(pair, variables)


def test_an_undefined_name_in_a_template_raises() -> None:
    pair = PromptPair(system="ok {{ source_lang }}", user="{{ poem_txt }}")
    with pytest.raises(PromptRenderError, match="prompt template failed: 'poem_txt' is undefined"):
        render(pair, {"source_lang": "English"})


def test_a_template_syntax_error_raises_prompt_render_error() -> None:
    pair = PromptPair(system="{% if x %}unclosed", user="u")
    with pytest.raises(PromptRenderError, match="prompt template failed"):
        render(pair, {"x": True})


def test_templates_are_sandboxed() -> None:
    pair = PromptPair(system="{{ x.__class__.__mro__ }}", user="u")
    with pytest.raises(PromptRenderError):
        render(pair, {"x": "s"})


def test_render_strips_and_does_not_escape() -> None:
    pair = PromptPair(system="\n  {{ a }}  \n", user="<tag>{{ b }}</tag>")
    out = render(pair, {"a": "A & B", "b": "<em>x</em>"})
    assert out.system == "A & B"
    assert out.user == "<tag><em>x</em></tag>"


# --- strategy dials and the variant reach the initial translation ----------------------------


def test_strategy_dials_and_hint_appear_in_the_initial_translation_prompt(
    cfg: AppConfig,
) -> None:
    plan = make_plan(cfg, strategy=DIALS, parallel_count=3)
    for index in range(3):
        llm = run(cfg, plan, lambda ctx, i=index: translate_candidate(ctx, i))
        system = llm.system
        assert "adaptation level: domesticating" in system
        assert "repetition policy: adaptive" in system
        assert "additions policy: allow_with_alt" in system
        assert "prosody target: iambic tetrameter in rhymed couplets" in system
        assert "Examples of the desired style:" in system
        assert DIALS["few_shots"] in system
        cand = plan.candidates[index]
        assert f"Strategy for this translation ({cand.variant}): {cand.hint}" in system
        others = [c.hint for c in plan.candidates if c.variant != cand.variant]
        assert all(hint not in system for hint in others)
        user = llm.user
        assert "Source language: Chinese" in user
        assert "Target language: English" in user
        assert "Title: 静夜思" in user
        assert "Poet: 李白" in user
        assert POEM in user


def test_default_dials_come_from_the_config(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = run(cfg, plan, lambda ctx: translate_candidate(ctx, 0))
    assert "adaptation level: balanced" in llm.system
    assert "repetition policy: strict" in llm.system
    assert "additions policy: forbid" in llm.system
    assert "prosody target: keep the source's line count and stanza breaks" in llm.system
    # No few_shots: no examples section.
    assert "Examples of the desired style" not in llm.system
    assert "<background_briefing_report>" not in llm.user


def test_background_briefing_reaches_the_prompt(cfg: AppConfig) -> None:
    plan = make_plan(cfg, background_briefing="BBR: Li Bai wrote this in Yangzhou")
    llm = run(cfg, plan, lambda ctx: translate_candidate(ctx, 0))
    assert "<background_briefing_report>\nBBR: Li Bai wrote this in Yangzhou" in llm.user


def test_dials_reach_the_reasoning_initial_translation_prompt(cfg: AppConfig) -> None:
    plan = make_plan(cfg, workflow_mode="reasoning", strategy=DIALS)
    llm = run(cfg, plan, lambda ctx: translate_candidate(ctx, 1))
    system = llm.system
    assert "- adaptation level: domesticating (foreignizing keeps the source culture" in system
    assert "- repetition policy: adaptive (strict: a repeated word" in system
    assert "- additions policy: allow_with_alt (forbid: add nothing" in system
    assert "- prosody target: iambic tetrameter in rhymed couplets" in system
    assert DIALS["few_shots"] in system
    assert f"Strategy (lyric): {plan.candidates[1].hint}" in system


@pytest.mark.parametrize(
    "stage",
    [
        lambda ctx: evaluate(ctx, [CHOSEN]),
        lambda ctx: editor_review(ctx, CHOSEN),
        lambda ctx: translator_revision(ctx, CHOSEN, EditorReview(suggestions="s")),
    ],
    ids=["evaluation", "editor_review", "translator_revision"],
)
def test_dials_reach_the_later_steps(cfg: AppConfig, stage) -> None:
    plan = make_plan(cfg, strategy=DIALS)
    llm = run(cfg, plan, stage)
    flat = " ".join(llm.text.split())
    assert "adaptation domesticating" in flat
    assert "repetition adaptive" in flat
    assert "additions allow_with_alt" in flat
    assert "prosody: iambic tetrameter in rhymed couplets" in flat


# --- evaluation prompt ------------------------------------------------------------------------


def test_evaluation_prompt_lists_every_candidate_with_ids_and_criteria(cfg: AppConfig) -> None:
    plan = make_plan(cfg, parallel_count=4)
    cands = [
        CandidateResult(
            index=i,
            variant="v",
            status="succeeded",
            translated_title=f"TITLE-{i}",
            translation=f"TRANSLATION-{i} line a\nTRANSLATION-{i} line b",
            notes=f"NOTES-{i}",
        )
        for i in range(4)
    ]
    llm = RecordingLLM()
    result = evaluate(context(cfg, plan, llm), cands)
    user = llm.user
    blocks = dict(re.findall(r'<candidate id="(\d+)">(.*?)</candidate>', user, re.DOTALL))
    assert sorted(blocks) == ["1", "2", "3", "4"]
    for pid, index in enumerate(result.presented_order, start=1):
        block = blocks[str(pid)]
        assert f"<title>TITLE-{index}</title>" in block
        assert f"TRANSLATION-{index} line a\nTRANSLATION-{index} line b" in block
    # The translators' notes argue for their own text: the judge does not see them.
    assert "NOTES-" not in user and "<notes>" not in user
    for criterion in plan.criteria:
        assert f"- {criterion.name}: {criterion.description}" in user
    for pid in range(1, 5):
        assert f'<score id="{pid}">fidelity=N, imagery=N, musicality=N, fluency=N</score>' in user
    assert "<selected_index>" in user
    assert POEM in user


# --- editor prompt ------------------------------------------------------------------------------


def test_editor_prompt_has_line_labels(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = run(cfg, plan, lambda ctx: editor_review(ctx, CHOSEN))
    user = llm.user
    assert ("[L1] 床前明月光，\n[L2] 疑是地上霜。\n\n[L3] 举头望明月，\n[L4] 低头思故乡。") in user
    assert '<translation title="Quiet Night Thought">\nCHOSEN-LINE-ONE\nCHOSEN-LINE-TWO' in user
    assert "CHOSEN-NOTES" in user


def test_the_reviser_sees_the_labels_the_editor_cites(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    review = EditorReview(suggestions="1. [L2] say 'frost' plainly")
    llm = run(cfg, plan, lambda ctx: translator_revision(ctx, CHOSEN, review))
    assert (
        "[L1] 床前明月光，\n[L2] 疑是地上霜。\n\n[L3] 举头望明月，\n[L4] 低头思故乡。"
    ) in llm.user
    assert "never write them in your answer" in llm.user


def test_translators_and_judges_see_the_poem_without_labels(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    for stage in (lambda ctx: translate_candidate(ctx, 0), lambda ctx: evaluate(ctx, [CHOSEN])):
        llm = run(cfg, plan, stage)
        assert "[L1]" not in llm.user and POEM in llm.user


@pytest.mark.parametrize("mode", ["hybrid", "reasoning", "non_reasoning"])
def test_every_modes_translation_prompt_explains_the_dials_and_the_line_rule(
    cfg: AppConfig, mode: str
) -> None:
    plan = make_plan(cfg, workflow_mode=mode, target_lang="zh-CN", source_lang="en", poem="a\nb")
    llm = run(cfg, plan, lambda ctx: translate_candidate(ctx, 0))
    text = llm.system + llm.user
    for meaning in ("foreignizing keeps", "strict: a repeated word", "forbid: add nothing"):
        assert meaning in text, (mode, meaning)
    assert "one line per source line" in text
    assert (
        "Target language: Simplified Chinese" in text
        or "Target language: Simplified Chinese." in text
    )
    assert "Chinese" not in text.replace("Simplified Chinese", "").replace(
        "Simplified\nChinese", ""
    )


# --- reasoning-model prompts ----------------------------------------------------------------


def test_prompt_file_for_model(cfg: AppConfig) -> None:
    initial = cfg.prompts["initial_translation"]
    assert initial.reasoning is not None
    assert initial.for_model(reasoning=True) == initial.reasoning
    default = initial.for_model(reasoning=False)
    assert default == PromptPair(system=initial.system, user=initial.user)
    assert default != initial.reasoning
    # A step without reasoning templates uses its default ones for reasoning models.
    editor = cfg.prompts["editor_review"]
    assert editor.reasoning is None
    assert editor.for_model(reasoning=True) == PromptPair(system=editor.system, user=editor.user)


def test_prompt_file_without_reasoning_section() -> None:
    pf = PromptFile(system="s", user="u")
    assert pf.for_model(reasoning=True) == PromptPair(system="s", user="u")
    assert pf.for_model(reasoning=False) == PromptPair(system="s", user="u")


def test_reasoning_models_get_the_reasoning_prompts(cfg: AppConfig) -> None:
    reasoning_plan = make_plan(cfg, workflow_mode="reasoning")
    assert cfg.models.models[reasoning_plan.candidates[0].call.model].reasoning
    llm = run(cfg, reasoning_plan, lambda ctx: translate_candidate(ctx, 0))
    assert llm.system.startswith("You translate poetry from Chinese into English as poetry.")
    assert "Give only the final answer in these tags:" in llm.user

    hybrid_plan = make_plan(cfg, workflow_mode="hybrid")
    assert not cfg.models.models[hybrid_plan.candidates[0].call.model].reasoning
    llm = run(cfg, hybrid_plan, lambda ctx: translate_candidate(ctx, 0))
    assert llm.system.startswith("You are an accomplished literary translator of poetry")
    assert "Give only the final answer" not in llm.user
