"""Issue 21, points 7, 8 and 13 without services: a judge that never answered is a
warning (not a silent success), the reader sees one numbering of the candidates, and
reasoning models' thinking is kept with its step.

Whole jobs run through the in-process runner with an LLM double that answers in the
real format, so the stages, assembly, Markdown and the CLI's report run as in
production.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from tests.helpers.runner_doubles import ANSWERS, plan_for
from tests.helpers.stage_calls import context, cost, translate_candidate
from vpsweb.cli.live import JobState, PlainView
from vpsweb.cli.report import print_result
from vpsweb.config import load_config
from vpsweb.domain import reasoning
from vpsweb.domain.job_warnings import JobWarning
from vpsweb.domain.models import EvaluationResult, Totals
from vpsweb.domain.plan import StepCall
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.domain.result import TranslationOutput
from vpsweb.domain.runner import run_job
from vpsweb.domain.selection import renumber
from vpsweb.errors import PermanentLLMError, TransientLLMError
from vpsweb.files.output import to_markdown
from vpsweb.llm.client import Completion
from vpsweb.monitoring.usage import summary_of_ending
from vpsweb.stages import evaluation, revision_check
from vpsweb.storage import JobStatus

NOT_FOUND = PermanentLLMError(
    "revision_check via simulator/sim-fail404: HTTP 404: The model does not exist",
    status=404,
    attempts=1,
)
RATE_LIMITED = TransientLLMError(
    "evaluation via simulator/sim-429: HTTP 429 after 3 attempt(s): Rate limit reached",
    attempts=3,
)


class LLM:
    """Canned answers per step (test_runner's), a step that raises ``errors[step]``,
    and reasoning beside every answer when ``thinking`` is set."""

    def __init__(
        self,
        errors: dict[str, Exception] | None = None,
        answers: dict[str, str] | None = None,
        thinking: Callable[[str], str] | None = None,
    ) -> None:
        self.errors = errors or {}
        self.answers = {**ANSWERS, **(answers or {})}
        self.thinking = thinking

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion:
        if call.step in self.errors:
            raise self.errors[call.step]
        return Completion(
            content=self.answers[call.step],
            reasoning_content=self.thinking(call.step) if self.thinking else None,
            usage=cost(call, 100, 20),
            latency_s=0.01,
            attempts=1,
        )


def run(llm: LLM, n: int = 3) -> TranslationOutput:
    return run_job(plan_for(n), load_config(), llm)


def report(out: TranslationOutput) -> str:
    buf = io.StringIO()
    print_result(out, buf)
    return buf.getvalue()


# --- 7: a judge that never answered ---------------------------------------------------------


@pytest.mark.parametrize(
    "llm",
    [
        LLM(errors={"evaluation": RATE_LIMITED}),
        LLM(answers={"evaluation": "I cannot decide between these."}),
    ],
    ids=["rate-limited", "unparseable"],
)
def test_a_judge_that_never_answered_is_a_warning_everywhere(llm: LLM) -> None:
    out = run(llm)
    ev = out.evaluation
    assert ev.method == "fallback_line_count" and not ev.judged
    [warning] = out.warnings
    assert warning.kind == "judge_unavailable" and warning.stage == "Translation Evaluation"
    assert f"candidate #{ev.selected_index} was picked by line count, not judged" in (
        warning.message
    )
    assert "2 order(s)" in warning.message
    # The cause is named, not only the method.
    assert ("HTTP 429" in warning.message) or ("selected_index" in warning.message)
    # The progress line says what happened, and the event carries the warning.
    assert "by line count: the judge gave no verdict" in evaluation.summary(ev)
    text = report(out)
    assert f"WARNING (judge_unavailable): {warning.message}." in text
    assert "the judge saw them shuffled" not in text  # no judge numbered anything
    md = to_markdown(out)
    # (Markdown escapes the cause's own characters: compare up to it.)
    assert "**Warning:** the judge gave no verdict in any of 2 order(s) (" in md
    assert "The judge saw the candidates shuffled" not in md
    # Still a success: the translation is real and paid for.
    assert out.final.translation


def test_a_judged_job_has_no_warning_and_shows_the_mapping() -> None:
    out = run(LLM())
    assert out.warnings == [] and out.evaluation.judged
    assert "the judge saw them shuffled as" in report(out)
    assert "The judge saw the candidates shuffled" in to_markdown(out)


def test_an_unknown_revision_check_model_leaves_the_revision_unchecked_not_rejected() -> None:
    out = run(LLM(errors={"revision_check": NOT_FOUND}))
    check = out.revision_check
    assert check.decision == "revision_unchecked" and not check.kept
    assert check.preferred == [None, None]
    # The stated rule: without a verdict the candidate stays, the revision is shown.
    assert out.final.source == "candidate"
    [warning] = out.warnings
    assert warning.kind == "revision_check_unavailable"
    assert "did not run in 2 of 2 order(s)" in warning.message and "HTTP 404" in warning.message
    summary = revision_check.summary(check)
    assert "not checked" in summary and "rejected" not in summary
    text = report(out)
    assert "WARNING (revision_check_unavailable)" in text
    assert "Revision check: revision_unchecked" in text
    assert "**Warning:** the revision check did not run in 2 of 2 order(s)" in to_markdown(out)


def test_a_verdict_for_the_candidate_is_still_a_rejection_without_warning() -> None:
    # "the first version" in both orders: the candidate once, the revision once.
    first = "<preferred_version>1</preferred_version><reason>r</reason>"
    out = run(LLM(answers={"revision_check": first}))
    assert out.revision_check.decision == "revision_rejected" and out.warnings == []


def test_the_live_and_plain_views_show_a_stage_warning() -> None:
    e = ProgressEvent(
        event=EventKind.STAGE_COMPLETED,
        stage="Translation Evaluation",
        status="completed",
        progress_percent=45,
        message="selected candidate 2 by line count: the judge gave no verdict",
        warning="the judge gave no verdict in any of 2 order(s) (HTTP 429)",
    )
    state = JobState.of("0123456789ab", None)
    state.apply(e)
    assert state.warnings == ["the judge gave no verdict in any of 2 order(s) (HTTP 429)"]
    line = PlainView(state, io.StringIO()).line(e)
    assert line is not None
    assert line.splitlines()[-1] == (
        "  warning: the judge gave no verdict in any of 2 order(s) (HTTP 429)"
    )


# --- 8: one numbering for the reader ----------------------------------------------------------


def test_renumber_maps_presented_ids_through_a_rotated_order() -> None:
    order = [1, 2, 0]  # presented 1 = candidate #1, 2 = #2, 3 = #0
    assert renumber("Candidate 2 keeps the images.", order) == "Candidate #2 keeps the images."
    assert renumber("candidates 1 and 3 are flat", order) == "candidates #1 and #0 are flat"
    assert renumber("Candidates 1, 2, and 3", order) == "Candidates #1, #2, and #0"
    assert renumber("#3 reads best; id 1 does not", order) == "#0 reads best; id #1 does not"
    assert renumber("Candidate 7 and 2 lines", order) == "Candidate 7 and 2 lines"


def test_the_rationale_speaks_the_readers_numbering_everywhere() -> None:
    """A judge that always picks the candidate shown second and says so by its id: the
    reader must read the chosen candidate's own number in the rationale."""
    second = (
        "<selected_index>2</selected_index>"
        "<analysis>Candidate 1 is literal; candidate 2 sings.</analysis>"
        "<rationale>Candidate 2 keeps the images.</rationale>"
    )
    out = run(LLM(answers={"evaluation": second}))
    ev = out.evaluation
    chosen = ev.selected_index
    shown = next(j for j in ev.judgements if j.selected_index == chosen)
    assert shown.order[1] == chosen
    assert ev.rationale == f"Candidate #{chosen} keeps the images."
    assert ev.analysis == f"Candidate #{shown.order[0]} is literal; candidate #{chosen} sings."
    text = report(out)
    assert f"Chosen candidate: #{chosen} " in text
    assert f"Rationale: Candidate #{chosen} keeps the images." in text
    assert f"Candidate #{chosen} keeps the images." in to_markdown(out)


# --- 13: reasoning ------------------------------------------------------------------------------


def test_reasoning_is_kept_with_each_step_and_shown() -> None:
    out = run(LLM(thinking=lambda step: f"  thinking about {step}, candidate 1 first  "))
    assert all(c.reasoning.startswith("thinking about initial_translation") for c in out.candidates)
    assert out.editor_review.reasoning == "thinking about editor_review, candidate 1 first"
    assert out.revision.reasoning.startswith("thinking about translator_revision")
    # The judge's reasoning speaks the reader's numbering too.
    ev = out.evaluation
    shown = next(j for j in ev.judgements if j.selected_index == ev.selected_index)
    assert ev.reasoning == f"thinking about evaluation, candidate #{shown.order[0]} first"
    again = TranslationOutput.model_validate_json(out.model_dump_json())
    assert again.editor_review.reasoning == out.editor_review.reasoning
    md = to_markdown(out)
    assert "*The editor's reasoning:*" in md and "*The judge's reasoning:*" in md
    assert "Reasoning (in full in the saved JSON and Markdown):" in report(out)


def test_no_reasoning_says_nothing() -> None:
    out = run(LLM())
    assert out.candidates[0].reasoning == "" and "reasoning:*" not in to_markdown(out)
    assert "Reasoning (" not in report(out)


def test_reasoning_is_trimmed_in_the_middle_and_fenced_safely() -> None:
    long = "START " + "x" * 50_000 + " END"
    kept = reasoning.kept(long)
    assert len(kept) <= reasoning.MAX_REASONING_CHARS
    assert kept.startswith("START") and kept.endswith("END")
    assert "characters of reasoning left out" in kept
    assert reasoning.kept(None) == "" and reasoning.kept({"a": 1}) == ""
    lines = reasoning.markdown("Why", "a ``` fence ```` inside")
    assert lines[2] == "`````text" and lines[4] == "`````"


def test_a_failed_answer_keeps_no_reasoning_of_its_own() -> None:
    ctx = context(load_config(), plan_for(1), LLM(errors={"initial_translation": RATE_LIMITED}))
    result = translate_candidate(ctx, 0)
    assert result.status == "failed" and result.reasoning == ""


def test_a_job_that_failed_after_a_judge_fallback_still_counts_the_warning() -> None:
    warned = EvaluationResult(
        selected_index=0,
        rationale="r",
        method="fallback_line_count",
        warnings=[JobWarning(kind="judge_unavailable", stage="Evaluation", message="m")],
    )
    s = summary_of_ending(plan_for(2), JobStatus.FAILED, Totals(), "Review", evaluation=warned)
    assert s.warnings == ["judge_unavailable"] and s.judge_fallback
