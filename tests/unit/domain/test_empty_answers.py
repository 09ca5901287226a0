"""An empty answer is said to be empty, at every stage and for manual answers too
(issue 21, point 10): "missing required tag(s)" or "has no suggestions" sent the
user looking for a format problem when nothing came back at all."""

from __future__ import annotations

import pytest

from tests.helpers.scripted_llm import CHOSEN, THREE, Reply, ScriptedLLM, ctx_for, make_plan
from tests.helpers.selection import ZH, revision_prior
from tests.helpers.selection import make_plan as selection_plan
from tests.helpers.stage_calls import context, editor_review, evaluate, translator_revision
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.manual_answers import check_answer
from vpsweb.domain.models import EditorReview
from vpsweb.domain.parsing import extract_fields, parse_selected_index
from vpsweb.errors import EmptyAnswer, ParseError, StageFailed
from vpsweb.stages.candidate import translate_candidate
from vpsweb.stages.review import parse_suggestions
from vpsweb.stages.revision_check import check_revision
from vpsweb.stages.shared import Prior
from vpsweb.stages.table import STAGES

EMPTIES = ["", "   ", "\n\n \t\n"]
SAID = "returned an empty answer"


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def assert_said_empty(text: str) -> None:
    assert SAID in text, text
    assert "missing" not in text and "no suggestions" not in text, text


@pytest.mark.parametrize("empty", EMPTIES)
def test_a_candidate_that_got_nothing_says_so(cfg: AppConfig, empty: str) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(*[Reply(empty)] * (plan.parse_retries + 1))
    result = translate_candidate(ctx_for(cfg, plan, llm), Prior(), 0)
    assert result.status == "failed" and result.error is not None
    assert_said_empty(result.error)
    assert "(the answer began" not in result.error  # there was nothing to quote


def test_the_judge_that_got_nothing_says_so(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(*[Reply("")] * (plan.judge_retries + 1))
    result = evaluate(ctx_for(cfg, plan, llm), THREE)
    assert result.method == "fallback_line_count"
    assert [j.error for j in result.judgements if j.error]
    for j in result.judgements:
        assert_said_empty(j.error or "")


def test_the_editor_that_got_nothing_says_so(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(*[Reply(" \n ")] * (plan.parse_retries + 1))
    with pytest.raises(StageFailed) as info:
        editor_review(context(cfg, plan, llm), CHOSEN)
    assert_said_empty(str(info.value))
    assert "(deepseek-reasoner)" in str(info.value)  # whose answer it was


def test_the_reviser_that_got_nothing_says_so(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(*[Reply("")] * (plan.parse_retries + 1))
    with pytest.raises(StageFailed) as info:
        translator_revision(context(cfg, plan, llm), CHOSEN, EditorReview(suggestions="s"))
    assert_said_empty(str(info.value))


def test_the_revision_check_that_got_nothing_says_so(cfg: AppConfig) -> None:
    plan = selection_plan(cfg)
    llm = ScriptedLLM(*[Reply("")] * ((plan.judge_retries + 1) * 2))
    result = check_revision(context(cfg, plan, llm), revision_prior(ZH["a"], ZH["b"]))
    assert result.preferred == [None, None]
    assert_said_empty(result.reason)


def test_an_answer_of_only_reasoning_is_empty_and_says_what_it_had(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(*[Reply("<think>hmm</think>\n```\n```")] * (plan.parse_retries + 1))
    with pytest.raises(StageFailed) as info:
        editor_review(context(cfg, plan, llm), CHOSEN)
    assert "returned an empty answer apart from <think> reasoning" in str(info.value)


def test_an_empty_answer_is_re_asked_like_any_unusable_one(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    good = "<editor_suggestions>1. [L1] fine</editor_suggestions>"
    llm = ScriptedLLM(Reply(""), Reply(good))
    assert editor_review(context(cfg, plan, llm), CHOSEN).suggestions == "1. [L1] fine"


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
@pytest.mark.parametrize("empty", EMPTIES)
def test_an_empty_manual_answer_is_refused_as_empty(stage, empty: str) -> None:
    prompt = '<candidate id="1"> <candidate id="2">'
    with pytest.raises(EmptyAnswer) as info:
        check_answer(stage, empty, prompt)
    assert str(info.value) == "the answer is empty"
    assert isinstance(info.value, ParseError)  # the client turns it into AnswerRejected


@pytest.mark.parametrize(
    "parse",
    [
        lambda t: extract_fields(t, ["a"]),
        parse_selected_index,
        parse_suggestions,
    ],
)
def test_the_parsers_say_empty_first(parse) -> None:
    with pytest.raises(EmptyAnswer, match="the answer is empty"):
        parse("\n")
