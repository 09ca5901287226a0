"""The four stages with a scripted test double for the LLM client (no services)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.helpers.scripted_llm import (
    CHOSEN,
    THREE,
    Reply,
    ScriptedLLM,
    candidate,
    ctx_for,
    make_plan,
)
from tests.helpers.stage_calls import (
    cost,
    editor_review,
    evaluate,
    translate_candidate,
    translator_revision,
)
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.models import EditorReview, Usage
from vpsweb.domain.plan import StepCall
from vpsweb.errors import Cancelled, PermanentLLMError, StageFailed, TransientLLMError
from vpsweb.stages.shared import StageContext

GOOD_CANDIDATE = """<translated_poem_title>Quiet Night Thought</translated_poem_title>
<translated_poet_name>Li Bai</translated_poet_name>
<initial_translation>
Before my bed, moonlight;
frost on the ground?

Head up: the bright moon.
Head down: home.
</initial_translation>
<initial_translation_notes>Kept four lines.</initial_translation_notes>"""

MALFORMED = "Here is a lovely translation of the poem, I hope you like it."


# --- the test double --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


# --- translate_candidate ------------------------------------------------------------------


def test_translate_candidate_success(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(Reply(GOOD_CANDIDATE, 1200, 300, sim_latency_ms=1500))
    result = translate_candidate(ctx_for(cfg, plan, llm), 1)
    assert result.ok
    assert result.status == "succeeded"
    assert result.error is None
    assert (result.index, result.variant) == (1, "lyric")
    assert result.strategy_hint == plan.candidates[1].hint
    assert result.translated_title == "Quiet Night Thought"
    assert result.translated_poet == "Li Bai"
    assert result.translation == (
        "Before my bed, moonlight;\nfrost on the ground?\n\n"
        "Head up: the bright moon.\nHead down: home."
    )
    assert result.notes == "Kept four lines."
    m = result.metrics
    assert m is not None
    assert m.usage == cost(plan.candidates[1].call, 1200, 300)
    assert m.usage.cost == round(1.2 * 0.002 + 0.3 * 0.003, 10)
    assert m.usage.currency == "CNY"
    assert (m.attempts, m.billed_calls) == (1, 1)
    assert m.llm_latency_s == 0.25
    assert m.reported_latency_s == 1.5
    assert m.model.model == plan.candidates[1].call.model
    assert m.started_at is not None and m.finished_at is not None
    assert m.finished_at >= m.started_at
    # The call went out with candidate 1's own settings.
    call, messages = llm.calls[0]
    assert call == plan.candidates[1].call
    assert [msg["role"] for msg in messages] == ["system", "user"]


def test_translate_candidate_malformed_then_good_bills_both(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(Reply(MALFORMED, 1000, 50), Reply(GOOD_CANDIDATE, 1100, 400, attempts=2))
    result = translate_candidate(ctx_for(cfg, plan, llm), 0)
    assert result.ok
    assert result.translated_poet == "Li Bai"
    call = plan.candidates[0].call
    m = result.metrics
    assert m is not None
    assert m.usage == cost(call, 1000, 50) + cost(call, 1100, 400)
    assert (m.usage.prompt_tokens, m.usage.completion_tokens) == (2100, 450)
    assert m.usage.cost == round((2100 * 0.002 + 450 * 0.003) / 1000, 10)
    assert m.billed_calls == 2
    assert m.attempts == 3  # 1 + 2 HTTP calls (the second needed a transient retry)
    assert len(llm.calls) == 2
    # The re-ask is the same prompt.
    assert llm.calls[0][1] == llm.calls[1][1]


def test_translate_candidate_malformed_twice_is_a_failed_record(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(
        Reply(MALFORMED, 900, 40), Reply("<initial_translation> </initial_translation>", 950, 10)
    )
    result = translate_candidate(ctx_for(cfg, plan, llm), 2)
    assert not result.ok
    assert result.status == "failed"
    assert result.translation == ""
    assert result.error is not None
    assert "missing required tag(s) <initial_translation>" in result.error
    assert (result.index, result.variant) == (2, "musical")
    m = result.metrics
    assert m is not None
    call = plan.candidates[2].call
    assert m.usage == cost(call, 900, 40) + cost(call, 950, 10)
    assert (m.attempts, m.billed_calls) == (2, 2)
    assert len(llm.calls) == 2  # parse_retries: 1 -> two calls in all, no third


def test_translate_candidate_llm_error_is_a_failed_record(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(TransientLLMError("HTTP 503 after 4 attempt(s): overloaded", attempts=4))
    result = translate_candidate(ctx_for(cfg, plan, llm), 0)
    assert result.status == "failed"
    assert result.error == "HTTP 503 after 4 attempt(s): overloaded"
    m = result.metrics
    assert m is not None
    assert m.attempts == 4
    assert m.billed_calls == 0
    assert m.usage == Usage()
    assert len(llm.calls) == 1  # a transient error is not re-asked at this level


def test_translate_candidate_malformed_then_llm_error_keeps_the_billed_call(
    cfg: AppConfig,
) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(
        Reply(MALFORMED, 800, 20),
        PermanentLLMError("HTTP 401 (check the API key)", status=401, attempts=1),
    )
    result = translate_candidate(ctx_for(cfg, plan, llm), 0)
    assert result.status == "failed"
    assert "HTTP 401" in (result.error or "")
    m = result.metrics
    assert m is not None
    assert m.usage == cost(plan.candidates[0].call, 800, 20)
    assert (m.attempts, m.billed_calls) == (2, 1)


# --- evaluate -------------------------------------------------------------------------------

_CANDIDATE_BLOCK = re.compile(r'<candidate id="(\d+)">(.*?)</candidate>', re.DOTALL)


def shown_candidates(prompt: str) -> dict[int, str]:
    return {int(k): body for k, body in _CANDIDATE_BLOCK.findall(prompt)}


def judge_picking(text: str, *, scores: dict[str, float] | None = None) -> Callable[..., str]:
    """A judge that finds which presented id shows ``text`` and answers that id."""

    def answer(call: StepCall, messages: list[dict[str, str]]) -> str:
        shown = shown_candidates(messages[1]["content"])
        ids = [k for k, body in shown.items() if text in body]
        assert len(ids) == 1, (text, shown)
        score_lines = "".join(
            f'<score id="{k}">fidelity={k}, fluency={(scores or {}).get(str(k), 5)}</score>\n'
            for k in shown
        )
        return (
            "<evaluation>\n<analysis>compared them</analysis>\n"
            f"<scores>\n{score_lines}</scores>\n"
            f"<selected_index>{ids[0]}</selected_index>\n"
            "<rationale>Most faithful.</rationale>\n</evaluation>"
        )

    return answer


@pytest.mark.parametrize("target", [0, 2])
@pytest.mark.parametrize("job_id", [f"job-{i}" for i in range(6)])
def test_evaluate_maps_the_judges_presented_id_back(
    cfg: AppConfig, job_id: str, target: int
) -> None:
    plan = make_plan(cfg, job_id=job_id)
    wanted = THREE[target].translation.splitlines()[0]
    llm = ScriptedLLM(judge_picking(wanted))
    result = evaluate(ctx_for(cfg, plan, llm), THREE)
    assert result.selected_index == target
    assert result.method == "judge"
    assert sorted(result.presented_order) == [0, 2]
    assert result.rationale == "Most faithful."
    assert result.analysis == "compared them"
    # Scores are re-keyed by candidate index: fidelity was set to the presented id.
    by_index = {s.index: s for s in result.scores}
    assert set(by_index) == {0, 2}
    for pid, idx in enumerate(result.presented_order, start=1):
        assert by_index[idx].scores["fidelity"] == pid
        assert by_index[idx].total == pid + 5
    # The failed candidate is not shown to the judge.
    shown = shown_candidates(llm.user())
    assert sorted(shown) == [1, 2]
    prompt = llm.user()
    assert "HTTP 500 from provider" not in prompt
    m = result.metrics
    assert m is not None
    assert m.model.model == plan.steps["evaluation"].model
    assert m.usage == cost(plan.steps["evaluation"], 1000, 200)
    assert llm.calls[0][0] == plan.steps["evaluation"]


def test_evaluate_presented_order_really_varies_across_jobs(cfg: AppConfig) -> None:
    orders = set()
    for i in range(6):
        plan = make_plan(cfg, job_id=f"job-{i}")
        llm = ScriptedLLM(judge_picking("zero line a"))
        orders.add(tuple(evaluate(ctx_for(cfg, plan, llm), THREE).presented_order))
    # Otherwise the mapping test above would not exercise a shuffled order.
    assert orders == {(0, 2), (2, 0)}


def test_evaluate_with_four_survivors_all_targets(cfg: AppConfig) -> None:
    cands = [candidate(i, f"poem {i} alpha\npoem {i} beta") for i in range(4)]
    for target in range(4):
        plan = make_plan(cfg, job_id="four", parallel_count=4)
        llm = ScriptedLLM(judge_picking(f"poem {target} alpha"))
        result = evaluate(ctx_for(cfg, plan, llm), cands)
        assert result.selected_index == target
        assert sorted(result.presented_order) == [0, 1, 2, 3]


def test_evaluate_unparseable_then_good_is_judge_retry(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(Reply("I like the second one best.", 700, 30), judge_picking("two line a"))
    result = evaluate(ctx_for(cfg, plan, llm), THREE)
    assert result.method == "judge_retry"
    assert result.selected_index == 2
    m = result.metrics
    assert m is not None
    assert m.billed_calls == 2
    assert m.usage == cost(plan.steps["evaluation"], 700, 30) + cost(
        plan.steps["evaluation"], 1000, 200
    )


def test_evaluate_out_of_range_id_is_retried(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM("<selected_index>7</selected_index>", judge_picking("zero line a"))
    result = evaluate(ctx_for(cfg, plan, llm), THREE)
    assert result.method == "judge_retry"
    assert result.selected_index == 0


def test_evaluate_unparseable_twice_falls_back_to_line_count(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(
        Reply("no idea", 500, 10), Reply("<selected_index>best</selected_index>", 600, 20)
    )
    result = evaluate(ctx_for(cfg, plan, llm), THREE)
    assert result.method == "fallback_line_count"
    # The source has four non-empty lines; candidate 2 has four, candidate 0 two.
    assert result.selected_index == 2
    assert "fallback rule" in result.rationale
    assert "line count closest to the source" in result.rationale
    assert "chose candidate #2" in result.rationale
    assert "not a number" in result.rationale  # the last parse error is kept
    assert result.scores == []
    assert sorted(result.presented_order) == [0, 2]
    m = result.metrics
    assert m is not None
    assert m.billed_calls == 2
    assert m.usage == cost(plan.steps["evaluation"], 500, 10) + cost(
        plan.steps["evaluation"], 600, 20
    )
    assert len(llm.calls) == 2


def test_evaluate_judge_llm_error_falls_back(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(TransientLLMError("timeout", attempts=4))
    result = evaluate(ctx_for(cfg, plan, llm), THREE)
    assert result.method == "fallback_line_count"
    assert result.selected_index == 2
    assert "timeout" in result.rationale
    assert result.metrics is not None
    assert result.metrics.attempts == 4


def test_evaluate_single_survivor(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    cands = [
        candidate(0, "", ok=False),
        candidate(1, "only one\nstill one"),
        candidate(2, "", ok=False),
    ]
    llm = ScriptedLLM(judge_picking("only one"))
    result = evaluate(ctx_for(cfg, plan, llm), cands)
    assert result.method == "single_candidate"
    assert result.selected_index == 1
    assert result.presented_order == [1]
    assert sorted(shown_candidates(llm.user())) == [1]


def test_evaluate_without_survivors_lists_every_cause(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    cands = [
        candidate(0, "", ok=False, variant="literal", error="HTTP 401 (check the API key)"),
        candidate(1, "", ok=False, variant="lyric", error="missing <initial_translation>"),
        candidate(2, "", ok=False, variant="musical", error="timeout after 180s"),
    ]
    llm = ScriptedLLM()
    with pytest.raises(StageFailed) as info:
        evaluate(ctx_for(cfg, plan, llm), cands)
    exc = info.value
    # The candidates failed, not the judge: their stage is blamed.
    assert exc.step == "initial_translation"
    msg = str(exc)
    assert msg.startswith("Initial Translation failed: no candidate succeeded")
    assert "candidate 0 (literal): HTTP 401 (check the API key)" in msg
    assert "candidate 1 (lyric): missing <initial_translation>" in msg
    assert "candidate 2 (musical): timeout after 180s" in msg
    assert llm.calls == []  # nothing was paid for


def test_a_cause_shared_by_every_candidate_is_said_once(cfg: AppConfig) -> None:
    cause = "no API key for model 'deepseek-chat': set DEEPSEEK_API_KEY"
    cands = [candidate(i, "", ok=False, variant=v, error=cause) for i, v in enumerate("abc")]
    with pytest.raises(StageFailed) as info:
        evaluate(ctx_for(cfg, make_plan(cfg), ScriptedLLM()), cands)
    assert info.value.cause == f"no candidate succeeded: candidates 0 (a), 1 (b), 2 (c): {cause}"


# --- editor_review --------------------------------------------------------------------------


def test_editor_review_parses_the_tag(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(
        "Thinking...\n<editor_suggestions>\n1. [L2] say 'frost'\n</editor_suggestions>"
    )
    review = editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert review.suggestions == "1. [L2] say 'frost'"
    assert review.metrics is not None
    assert review.metrics.model.model == plan.steps["editor_review"].model
    assert llm.calls[0][0] == plan.steps["editor_review"]


def test_editor_review_falls_back_to_raw_text(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    raw = "1. [L1] 'moonlight' should be 'bright moonlight'.\n2. [L4] add 'of home'."
    llm = ScriptedLLM(f"\n  {raw}\n")
    review = editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert review.suggestions == raw
    assert len(llm.calls) == 1


def test_editor_review_empty_then_good(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(Reply("   \n", 100, 0), Reply("<editor_suggestions>ok</editor_suggestions>"))
    review = editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert review.suggestions == "ok"
    assert review.metrics is not None
    assert review.metrics.billed_calls == 2
    assert review.metrics.usage.prompt_tokens == 1100


def test_editor_review_empty_twice_fails_the_stage(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(Reply("", 400, 0), Reply("  \n ", 500, 1))
    with pytest.raises(StageFailed) as info:
        editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    exc = info.value
    assert exc.step == "editor_review"
    # Said to be empty, not "no suggestions" (issue 21): nothing came back at all.
    assert str(exc) == (
        "Editor Review failed: the model (deepseek-reasoner) returned an empty answer "
        "(asked 2 times)"
    )
    assert exc.metrics is not None
    assert exc.metrics.billed_calls == 2
    assert exc.metrics.usage == cost(plan.steps["editor_review"], 400, 0) + cost(
        plan.steps["editor_review"], 500, 1
    )


def test_editor_review_llm_error_fails_the_stage_with_metrics(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(TransientLLMError("HTTP 429 after 4 attempt(s)", attempts=4))
    with pytest.raises(StageFailed) as info:
        editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert info.value.step == "editor_review"
    assert "HTTP 429" in info.value.cause
    assert info.value.metrics is not None
    assert info.value.metrics.attempts == 4


def test_editor_review_empty_tags_are_not_accepted(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    empty = "<editor_suggestions>\n</editor_suggestions>"
    llm = ScriptedLLM(empty, empty)
    with pytest.raises(StageFailed):
        editor_review(ctx_for(cfg, plan, llm), CHOSEN)


def test_editor_review_raw_fallback_drops_the_think_block(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM("<think>private chain of thought</think>\n1. [L1] tighten the line")
    review = editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert review.suggestions == "1. [L1] tighten the line"


# --- translator_revision ----------------------------------------------------------------------

REVIEW = EditorReview(suggestions="1. [L2] say 'frost' plainly")


def test_translator_revision_parses_the_tags(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(
        "```xml\n"
        "<refined_translated_poem_title>Night Thoughts</refined_translated_poem_title>\n"
        "<refined_translated_poet_name>Li Po</refined_translated_poet_name>\n"
        "<revised_translation>Moonlight before my bed,\nlike frost.</revised_translation>\n"
        "<revised_translation_notes>took suggestion 1</revised_translation_notes>\n```"
    )
    revision = translator_revision(ctx_for(cfg, plan, llm), CHOSEN, REVIEW)
    assert revision.translated_title == "Night Thoughts"
    assert revision.translated_poet == "Li Po"
    assert revision.translation == "Moonlight before my bed,\nlike frost."
    assert revision.notes == "took suggestion 1"
    assert revision.metrics is not None
    assert revision.metrics.model.model == plan.steps["translator_revision"].model
    user = llm.user()
    assert "say 'frost' plainly" in user
    assert CHOSEN.translation in user
    assert "kept four lines" in user


def test_translator_revision_keeps_the_candidates_title_when_none_is_given(
    cfg: AppConfig,
) -> None:
    plan = make_plan(cfg)
    chosen = CHOSEN.model_copy(update={"translated_poet": "Li Bai"})
    llm = ScriptedLLM("<revised_translation>new lines</revised_translation>")
    revision = translator_revision(ctx_for(cfg, plan, llm), chosen, REVIEW)
    assert revision.translation == "new lines"
    assert revision.translated_title == "Quiet Night"
    assert revision.translated_poet == "Li Bai"
    assert revision.notes == ""


def test_translator_revision_without_translation_fails_the_stage(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM(
        "<refined_translated_poem_title>T</refined_translated_poem_title>", "sorry, no"
    )
    with pytest.raises(StageFailed) as info:
        translator_revision(ctx_for(cfg, plan, llm), CHOSEN, REVIEW)
    exc = info.value
    assert exc.step == "translator_revision"
    assert str(exc).startswith("Translator Revision failed: translator revision is missing")
    assert "<revised_translation>" in exc.cause
    assert exc.metrics is not None and exc.metrics.billed_calls == 2


# --- cancellation ----------------------------------------------------------------------------


def cancel_now() -> None:
    raise Cancelled("job t was cancelled")


def cancel_on_call(n: int) -> Callable[[], None]:
    seen = {"n": 0}

    def check() -> None:
        seen["n"] += 1
        if seen["n"] >= n:
            raise Cancelled("job t was cancelled")

    return check


STAGES: dict[str, Callable[[StageContext], object]] = {
    "translate_candidate": lambda ctx: translate_candidate(ctx, 0),
    "evaluate": lambda ctx: evaluate(ctx, THREE),
    "editor_review": lambda ctx: editor_review(ctx, CHOSEN),
    "translator_revision": lambda ctx: translator_revision(ctx, CHOSEN, REVIEW),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_cancelled_propagates_out_of_every_stage(cfg: AppConfig, stage: str) -> None:
    plan = make_plan(cfg)
    llm = ScriptedLLM("never used")
    with pytest.raises(Cancelled, match="cancelled"):
        STAGES[stage](ctx_for(cfg, plan, llm, check=cancel_now))
    assert llm.calls == []


@pytest.mark.parametrize("stage", list(STAGES))
def test_cancelled_during_a_parse_retry_propagates(cfg: AppConfig, stage: str) -> None:
    """The first answer is unusable (empty); the re-ask is cancelled: no failed record,
    no fallback, no StageFailed, just Cancelled."""
    plan = make_plan(cfg)
    llm = ScriptedLLM("", "never used")
    with pytest.raises(Cancelled):
        STAGES[stage](ctx_for(cfg, plan, llm, check=cancel_on_call(2)))
    assert len(llm.calls) == 1
