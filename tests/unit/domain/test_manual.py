"""Manual mode's domain parts: which steps are manual, the LLM stand-in, answer checks."""

from __future__ import annotations

import pytest

from vpsweb.config import load_config
from vpsweb.domain.manual_answers import CHECKS, ManualLLM, stage_of
from vpsweb.domain.plan import build_plan, manual_stages
from vpsweb.errors import AwaitingAnswer, ParseError, RequestInvalid
from vpsweb.stages.table import STAGES

REQUEST = {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 3}


def test_manual_steps_are_named_by_stage_or_item() -> None:
    assert manual_stages(True) == [s.name for s in STAGES]
    assert manual_stages(False) == []
    assert manual_stages(["evaluation", "candidate"]) == ["initial_translation", "evaluation"]
    with pytest.raises(RequestInvalid, match=r"unknown step.*'judge'.*allowed: initial"):
        manual_stages(["judge"])


def test_a_person_judges_once() -> None:
    cfg = load_config()
    plan = build_plan(REQUEST, cfg, job_id="m", offline=True, manual=True)
    assert (plan.judge_orders, plan.revision_check_orders) == (1, 1)
    api = build_plan(REQUEST, cfg, job_id="a", offline=True)
    assert api.manual_steps == [] and api.judge_orders == cfg.pipeline.evaluation.orders


def test_step_keys_map_to_their_stage() -> None:
    assert stage_of("candidate-12").name == "initial_translation"
    assert stage_of("revision_check").name == "revision_check"
    for bad in ("candidate-", "candidate-x", "initial_translation", "judge"):
        with pytest.raises(KeyError):
            stage_of(bad)


def test_the_stand_in_parks_without_an_answer_and_answers_for_free() -> None:
    plan = build_plan(REQUEST, load_config(), job_id="m", offline=True, manual=True)
    messages = [{"role": "user", "content": "translate"}]
    with pytest.raises(AwaitingAnswer) as info:
        ManualLLM(None).complete(plan.candidates[0].call, messages)
    assert info.value.messages == messages
    done = ManualLLM("<x>").complete(plan.candidates[0].call, messages)
    assert done.content == "<x>" and done.attempts == 0 and done.usage.cost == 0
    assert done.model is not None and done.model.model == "manual"


@pytest.mark.parametrize(
    ("name", "bad", "good", "prompt"),
    [
        ("initial_translation", "just text", "<initial_translation>a\nb</initial_translation>", ""),
        (
            "evaluation",
            "<selected_index>3</selected_index>",
            "<selected_index>2</selected_index>",
            '<candidate id="1">x</candidate><candidate id="2">y</candidate>',
        ),
        (
            "editor_review",
            "<editor_suggestions></editor_suggestions>",
            "<editor_suggestions>1. [L1] ok</editor_suggestions>",
            "",
        ),
        (
            "translator_revision",
            "<notes>x</notes>",
            "<revised_translation>a</revised_translation>",
            "",
        ),
        (
            "revision_check",
            "<preferred_version>3</preferred_version>",
            "<preferred_version>1</preferred_version>",
            "",
        ),
    ],
)
def test_every_stage_checks_a_persons_answer(name: str, bad: str, good: str, prompt: str) -> None:
    check = CHECKS[name]
    with pytest.raises(ParseError):
        check(bad, prompt)
    check(good, prompt)
