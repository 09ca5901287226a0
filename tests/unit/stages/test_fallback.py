"""Fallback models (pipeline.yaml ``fallback``): a step whose model fails it after the
client's retries is answered by the next fallback model, and says so."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import edit_yaml, make_config_dir
from tests.helpers.runner_doubles import ANSWERS
from tests.helpers.scripted_llm import CHOSEN, Reply, ScriptedLLM, candidate, ctx_for, make_plan
from tests.helpers.stage_calls import (
    editor_review,
    evaluate,
    translate_candidate,
    translator_revision,
)
from vpsweb.cli.report import print_result
from vpsweb.config import AppConfig, ConfigError, load_config
from vpsweb.domain.admission import check_plan
from vpsweb.domain.job_warnings import fallback_warning, output_warnings, warning_text
from vpsweb.domain.models import EditorReview
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.runner import run_job
from vpsweb.errors import (
    Cancelled,
    MissingAPIKey,
    PermanentLLMError,
    QuotaWaitTooLong,
    StageFailed,
    TransientLLMError,
)
from vpsweb.files.output import to_markdown
from vpsweb.view.result_view import ResultView

GOOD_CANDIDATE = (
    "<translated_poem_title>Quiet Night</translated_poem_title>"
    "<translated_poet_name>Li Bai</translated_poet_name>"
    "<initial_translation>Before my bed, moonlight;\nfrost on the ground?\n\n"
    "Head up.\nHead down.</initial_translation>"
)
SUGGESTIONS = "<editor_suggestions>1. [L2] sharper</editor_suggestions>"
VERDICT = "<selected_index>1</selected_index><rationale>best</rationale>"
NOT_FOUND = PermanentLLMError(
    "editor_review via deepseek/deepseek-reasoner: HTTP 404: model not found",
    status=404,
    attempts=1,
)


def with_fallbacks(d: dict[str, Any]) -> None:
    steps = d["modes"]["hybrid"]["steps"]
    steps["initial_translation"]["fallback"] = ["deepseek-reasoner", "qwen-max"]
    steps["evaluation"]["fallback"] = ["qwen-max"]
    steps["editor_review"]["fallback"] = ["qwen-max", "qwq-plus"]
    d["variants"][2]["model"] = "qwen-max"  # a variant's own model keeps the fallbacks


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    return load_config(make_config_dir(tmp_path_factory.mktemp("fb"), pipeline_edit=with_fallbacks))


@pytest.fixture(scope="module")
def plan(cfg: AppConfig) -> JobPlan:
    return make_plan(cfg)


# --- the plan ------------------------------------------------------------------------


def test_the_plan_carries_each_steps_fallbacks(plan: JobPlan) -> None:
    assert plan.steps["editor_review"].fallbacks == ["qwen-max", "qwq-plus"]
    assert plan.steps["evaluation"].fallbacks == ["qwen-max"]
    assert plan.steps["translator_revision"].fallbacks == []
    assert plan.candidates[0].call.fallbacks == ["deepseek-reasoner", "qwen-max"]
    # The variant on qwen-max falls back on the step's others, not on itself.
    assert plan.candidates[2].call.model == "qwen-max"
    assert plan.candidates[2].call.fallbacks == ["deepseek-reasoner"]
    nxt = plan.steps["editor_review"].next_fallback()
    assert nxt is not None and nxt.model == "qwen-max" and nxt.fallbacks == ["qwq-plus"]
    last = nxt.next_fallback()
    assert last is not None and (last.model, last.fallbacks) == ("qwq-plus", [])
    assert last.next_fallback() is None
    assert nxt.temperature == plan.steps["editor_review"].temperature


def test_each_fallback_adds_a_worst_case_to_the_step(plan: JobPlan) -> None:
    call = plan.steps["editor_review"]
    alone = plan.model_copy(
        update={"steps": {**plan.steps, "editor_review": call.model_copy(update={"fallbacks": []})}}
    )
    assert plan.step_budget_s("editor_review") == 3 * alone.step_budget_s("editor_review")


def test_a_plan_stored_before_fallbacks_loads_without_any(plan: JobPlan) -> None:
    data = plan.model_dump(mode="json")
    for c in data["candidates"]:
        del c["call"]["fallbacks"]
    for s in data["steps"].values():
        del s["fallbacks"]
    old = JobPlan.model_validate(data)
    assert all(c.fallbacks == [] for c in old.calls())


def test_workers_refuse_fallbacks_they_do_not_know(cfg: AppConfig, plan: JobPlan) -> None:
    assert check_plan(plan, cfg) == []
    call = plan.steps["editor_review"].model_copy(update={"fallbacks": ["gpt-9"]})
    bad = plan.model_copy(update={"steps": {**plan.steps, "editor_review": call}})
    (problem,) = check_plan(bad, cfg)
    assert problem.startswith("editor_review: fallback model 'gpt-9' is not in this cluster's")
    # Nor more fallbacks than the cluster's step has: each one extends the deadline.
    call = plan.steps["translator_revision"].model_copy(update={"fallbacks": ["qwen-max"]})
    more = plan.model_copy(update={"steps": {**plan.steps, "translator_revision": call}})
    assert check_plan(more, cfg) == [
        "translator_revision: 1 fallback model(s) exceed this cluster's 0"
    ]


# --- the step --------------------------------------------------------------------------


def test_a_permanent_failure_falls_back_and_the_metrics_say_why(
    cfg: AppConfig, plan: JobPlan
) -> None:
    llm = ScriptedLLM(NOT_FOUND, Reply(SUGGESTIONS, 500, 50))
    review = editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert review.suggestions == "1. [L2] sharper"
    [(first, _), (second, _)] = llm.calls
    assert (first.model, second.model) == ("deepseek-reasoner", "qwen-max")
    assert second.temperature == first.temperature and second.max_tokens == first.max_tokens
    assert llm.calls[0][1] == llm.calls[1][1]  # the same prompt (same kind of template)
    m = review.metrics
    assert m is not None
    assert (m.model.model, m.fallback_from) == ("qwen-max", "deepseek-reasoner")
    assert m.fallback_reason == str(NOT_FOUND)
    assert (m.attempts, m.billed_calls) == (2, 1)  # the failed call's attempt is counted
    (warning,) = output_warnings("Editor Review", review)
    assert warning.kind == "model_fallback" and warning.stage == "Editor Review"
    assert "fallback model qwen-max" in warning.message
    assert "its model deepseek-reasoner failed: " in warning.message and "404" in warning.message
    assert warning_text(review) == fallback_warning("", review).message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "error",
    [
        TransientLLMError("HTTP 503 after 4 attempt(s)", attempts=4),
        QuotaWaitTooLong("the quota frees up in 900s, past the step's worst case"),
        MissingAPIKey("no API key for model 'deepseek-chat' (provider 'deepseek')"),
    ],
    ids=["retries-exhausted", "quota-wait", "missing-key"],
)
def test_other_llm_errors_fall_back_too(cfg: AppConfig, plan: JobPlan, error: Exception) -> None:
    """A candidate on deepseek-chat falls back on deepseek-reasoner, a reasoning model:
    its prompt is rendered again from the step's reasoning templates."""
    llm = ScriptedLLM(error, GOOD_CANDIDATE)
    result = translate_candidate(ctx_for(cfg, plan, llm), 0)
    assert result.ok
    [(first, sent), (second, resent)] = llm.calls
    assert (first.model, second.model) == ("deepseek-chat", "deepseek-reasoner")
    # Rendered from the reasoning templates (only they put the strategy in the system).
    assert sent[0]["content"].startswith("You are an accomplished literary translator")
    assert resent[0]["content"].startswith("You translate poetry from Chinese into English")
    assert "Strategy (literal)" in resent[0]["content"]
    assert result.metrics is not None and result.metrics.fallback_from == "deepseek-chat"
    assert result.metrics.fallback_reason == str(error)
    (warning,) = output_warnings("Initial Translation", result)
    assert warning.message.startswith("candidate #0 was answered by the fallback model")


def test_without_fallbacks_the_step_fails_as_before(cfg: AppConfig, plan: JobPlan) -> None:
    llm = ScriptedLLM(PermanentLLMError("HTTP 401 (check the API key)", status=401, attempts=1))
    with pytest.raises(StageFailed) as info:
        translator_revision(ctx_for(cfg, plan, llm), CHOSEN, EditorReview(suggestions="s"))
    assert info.value.cause == "HTTP 401 (check the API key)"
    assert len(llm.calls) == 1
    assert info.value.metrics.fallback_from is None


def test_when_every_model_fails_the_step_names_them(cfg: AppConfig, plan: JobPlan) -> None:
    llm = ScriptedLLM(
        NOT_FOUND,
        TransientLLMError("qwen-max: HTTP 500 after 4 attempt(s)", attempts=4),
        PermanentLLMError("qwq-plus: HTTP 400: bad request", status=400, attempts=1),
    )
    with pytest.raises(StageFailed) as info:
        editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert [c.model for c, _ in llm.calls] == ["deepseek-reasoner", "qwen-max", "qwq-plus"]
    cause = info.value.cause
    assert cause.startswith("fallback model qwq-plus failed too: qwq-plus: HTTP 400")
    assert "the step's model deepseek-reasoner failed first: " in cause
    assert "HTTP 404" in cause and "then qwen-max: HTTP 500" in cause
    m = info.value.metrics
    assert (m.attempts, m.fallback_from, m.model.model) == (6, "deepseek-reasoner", "qwq-plus")


def test_a_cancelled_step_never_falls_back(cfg: AppConfig, plan: JobPlan) -> None:
    llm = ScriptedLLM(Cancelled("job cancelled"))
    with pytest.raises(Cancelled):
        editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert len(llm.calls) == 1


def test_an_unparseable_answer_is_asked_again_of_the_same_model(
    cfg: AppConfig, plan: JobPlan
) -> None:
    llm = ScriptedLLM("", SUGGESTIONS)
    review = editor_review(ctx_for(cfg, plan, llm), CHOSEN)
    assert [c.model for c, _ in llm.calls] == ["deepseek-reasoner", "deepseek-reasoner"]
    assert review.metrics is not None and review.metrics.fallback_from is None
    assert output_warnings("Editor Review", review) == []


def test_a_judge_order_that_fell_back_is_said_of_the_evaluation(
    cfg: AppConfig, plan: JobPlan
) -> None:
    two = plan.model_copy(update={"judge_orders": 2})
    seen: list[int] = []

    def first_fails(call: Any, _: Any) -> Any:
        if not seen:
            seen.append(1)
            return NOT_FOUND
        return VERDICT

    llm = ScriptedLLM(first_fails, first_fails, first_fails)
    cands = [candidate(0, "zero a\nzero b\nzero c\nzero d"), candidate(1, "one a\none b\none c")]
    result = evaluate(ctx_for(cfg, two, llm), cands)
    assert result.judged
    assert sorted(c.model for c, _ in llm.calls) == [
        "deepseek-reasoner",
        "deepseek-reasoner",
        "qwen-max",
    ]
    m = result.metrics
    assert m is not None and m.fallback_from == "deepseek-reasoner" and m.model.model == "qwen-max"
    assert m.fallback_reason is not None and m.fallback_reason.startswith("in 1 of 2 calls: ")


def test_a_whole_job_says_which_step_fell_back_everywhere(cfg: AppConfig, plan: JobPlan) -> None:
    def answer(call: Any, _: Any) -> Any:
        if (call.step, call.model) == ("editor_review", "deepseek-reasoner"):
            return NOT_FOUND
        return ANSWERS[call.step]

    llm = ScriptedLLM(*[answer] * 20)
    out = run_job(plan, cfg, llm, sequential=True)
    (warning,) = out.warnings
    assert (warning.kind, warning.stage) == ("model_fallback", "Editor Review")
    assert warning.message.startswith(
        "Editor Review was answered by the fallback model qwen-max, because its model "
        "deepseek-reasoner failed: editor_review via deepseek/deepseek-reasoner: HTTP 404"
    )
    assert out.editor_review.metrics is not None
    assert out.editor_review.metrics.model.model == "qwen-max"
    assert out.totals.llm_calls == len(llm.calls)  # the refused call is counted too
    assert ResultView.of(out).warnings == [warning]
    buf = io.StringIO()
    print_result(out, buf)
    assert f"WARNING (model_fallback): {warning.message}." in buf.getvalue()
    md = to_markdown(out)
    assert "**Warning (Editor Review):** Editor Review was answered by the fallback model" in md


# --- the config ------------------------------------------------------------------------


def _problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(root)
    return info.value.problems


def test_config_names_unknown_and_own_fallbacks(tmp_path: Path) -> None:
    root = make_config_dir(tmp_path)
    path = root / "pipeline.yaml"

    def bad(d: dict[str, Any]) -> None:
        d["modes"]["hybrid"]["steps"]["evaluation"]["fallback"] = ["gpt-9", "deepseek-reasoner"]

    edit_yaml(path, bad)
    unknown, own = _problems(root)
    where = f"{path.resolve()}: modes.hybrid.steps.evaluation.fallback"
    assert unknown.startswith(f"{where}.0: unknown model 'gpt-9'; allowed: ")
    allowed = unknown.split("allowed: ", 1)[1].split(", ")
    assert "deepseek-chat" in allowed and "deepseek-reasoner" not in allowed
    assert own.startswith(f"{where}.1: 'deepseek-reasoner' is the step's own model")


def test_config_check_reports_a_bad_fallback(tmp_path: Path, capsys) -> None:
    from vpsweb.cli import main

    root = make_config_dir(tmp_path)
    edit_yaml(
        root / "pipeline.yaml",
        lambda d: d["modes"]["reasoning"]["steps"]["editor_review"].update(fallback=["nope"]),
    )
    assert main(["config", "check", "--config-dir", str(root)]) != 0
    out = capsys.readouterr()
    assert "modes.reasoning.steps.editor_review.fallback.0: unknown model 'nope'" in (
        out.out + out.err
    )
