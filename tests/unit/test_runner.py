"""The in-process runner: whole jobs through the same stages, no Celery, no Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.stage_calls import cost
from vpsweb.config import load_config
from vpsweb.domain.plan import StepCall, build_plan
from vpsweb.domain.result import compute_totals
from vpsweb.domain.runner import run_job
from vpsweb.errors import StageFailed
from vpsweb.files.output import to_markdown
from vpsweb.llm.client import Completion
from vpsweb.stages.table import STAGES

POEM = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。"
TRANSLATION = (
    "Before my bed the moonlight gleams,\nlike frost upon the ground it seems.\n\n"
    "I raise my head to see the moon,\nthen bow it, thinking of my home."
)
ANSWERS = {
    "initial_translation": (
        "<translated_poem_title>Night Thoughts</translated_poem_title>"
        "<translated_poet_name>Li Bai</translated_poet_name>"
        "<initial_translation>" + TRANSLATION + "</initial_translation>"
        "<initial_translation_notes>four lines</initial_translation_notes>"
    ),
    "evaluation": "<selected_index>2</selected_index><rationale>best</rationale>",
    "editor_review": "<editor_suggestions>1. [L2] sharper</editor_suggestions>",
    "translator_revision": (
        "<revised_translation>" + TRANSLATION.replace("gleams", "glows") + "</revised_translation>"
    ),
    # Always "the second version": the revision in one order, the candidate in the other.
    "revision_check": "<preferred_version>2</preferred_version><reason>r</reason>",
}


class StepLLM:
    """Answers each step with its canned text; records calls from any thread (and the
    threads the candidates ran on)."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.lock = threading.Lock()

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion:
        with self.lock:
            self.calls.append(call.step)
            if call.step == "initial_translation":
                self.threads.add(threading.get_ident())
        if call.step == "initial_translation":
            time.sleep(0.05)  # long enough that a pool needs more than one thread
        content = "no tags here" if call.step == self.fail else ANSWERS[call.step]
        return Completion(
            content=content,
            reasoning_content=None,
            usage=cost(call, 100, 20),
            latency_s=0.01,
            attempts=1,
        )


def plan_for(n: int):
    return build_plan(
        {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en", "parallel_count": n},
        load_config(),
        job_id="0123456789ab",
        offline=True,
    )


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
