"""The in-process runner: whole jobs through the same stages, no Celery, no Redis."""

from __future__ import annotations

import pytest

from tests.helpers.runner_doubles import TRANSLATION, StepLLM, plan_for
from vpsweb.config import load_config
from vpsweb.domain.result import compute_totals
from vpsweb.domain.runner import run_job
from vpsweb.errors import StageFailed
from vpsweb.files.output import to_markdown
from vpsweb.stages.table import STAGES


def test_a_whole_job_runs_in_one_process() -> None:
    llm, cfg, plan = StepLLM(), load_config(), plan_for(3)
    seen: list[str] = []
    out = run_job(plan, cfg, llm, on_stage=lambda s, _out: seen.append(s.name))
    assert seen == [s.name for s in STAGES]
    judged = ["evaluation", "revision_check"] * 2  # each judge asked in two orders
    expected = ["initial_translation"] * 3 + judged + ["editor_review", "translator_revision"]
    assert sorted(llm.calls) == sorted(expected)
    assert len(llm.threads) >= 2  # the candidates ran on a pool, not in turn
    assert [c.index for c in out.candidates] == [0, 1, 2] and all(c.ok for c in out.candidates)
    # The judge's id 2 maps back through each order to a real candidate; a judge that
    # always names the second position disagrees with itself across the two orders.
    ev = out.evaluation
    assert out.selected_candidate == out.candidates[ev.selected_index]
    assert [j.selected_index for j in ev.judgements] == [j.order[1] for j in ev.judgements]
    assert ev.selected_index in {j.order[1] for j in ev.judgements}
    assert ev.agreement == 0.5 and ev.low_agreement and not ev.matches_top_aggregate
    # Preferred in one order only: the revision is not kept.
    assert out.revision_check.preferred == ["revision", "candidate"]
    assert (
        out.final.source == "candidate"
        and out.final.translation == out.selected_candidate.translation
    )
    assert out.editor_review.suggestions == "1. [L2] sharper"
    assert out.revision.translation == TRANSLATION.replace("gleams", "glows")
    assert out.totals == compute_totals(out.all_metrics(), out.totals.duration_s)
    # 3 candidates, the judge in 2 orders, editor, reviser, the revision check in 2 orders.
    assert out.totals.llm_calls == 9 and out.totals.prompt_tokens == 900
    assert set(out.step_durations) == {s.name for s in STAGES}
    md = to_markdown(out)
    for heading in (
        "## Candidates",
        "## Evaluation",
        "## Editor review",
        "## Revision notes",
        "## Revision check",
    ):
        assert heading in md


def test_sequential_runs_the_candidates_in_turn() -> None:
    llm = StepLLM()
    out = run_job(plan_for(4), load_config(), llm, sequential=True)
    assert len(llm.threads) == 1 and len(out.candidates) == 4


def test_a_stage_failure_raises_as_in_a_worker() -> None:
    llm = StepLLM(fail="translator_revision")
    with pytest.raises(StageFailed) as info:
        run_job(plan_for(2), load_config(), llm)
    assert info.value.step == "translator_revision"
    assert "Translator Revision failed" in str(info.value)
    assert llm.calls.count("translator_revision") == 2  # asked, then re-asked once
