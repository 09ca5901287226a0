"""Selection quality: multi-order judging, the gates before judging, the revision guard.

The judges here are deterministic test doubles that read the real rendered prompt
(which candidate text sits at which presented id) and answer in the real format,
so the stages' mapping, aggregation and guard run as in production.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable

import pytest

from tests.helpers.poems import POEM
from tests.helpers.selection import ZH, cand, make_plan, revision_prior
from tests.helpers.stage_calls import context, cost
from vpsweb.config import AppConfig, load_config
from vpsweb.config.schema import GateSettings
from vpsweb.domain.gates import check as gate_check
from vpsweb.domain.models import CandidateResult, EvaluationResult, Judgement
from vpsweb.domain.plan import StepCall
from vpsweb.domain.selection import aggregate, choose, judge_orders, presentation_order
from vpsweb.errors import StageFailed
from vpsweb.llm.client import Completion
from vpsweb.stages.evaluation import evaluate
from vpsweb.stages.revision_check import check_revision
from vpsweb.stages.shared import Prior

_BLOCK = re.compile(
    r'<(candidate|version) id="(\d+)">\s*(?:<title>.*?</title>\s*)?'
    r"<translation>\n(.*?)\n</translation>",
    re.DOTALL,
)


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


class Judge:
    """Scores each shown text by ``quality`` (keyed by the text), plus ``bias`` points on
    every criterion for whatever is shown first; answers the real XML. ``garble`` maps a
    text to garbage answers whenever that text is shown first."""

    def __init__(
        self,
        quality: dict[str, float],
        bias: float = 0.0,
        garble: str | None = None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        self.quality, self.bias, self.garble, self.barrier = quality, bias, garble, barrier
        self.prompts: list[str] = []
        self.lock = threading.Lock()

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion:
        user = messages[1]["content"]
        with self.lock:
            self.prompts.append(user)
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # raises unless the calls are in flight together
        shown = [(int(pid), text) for _kind, pid, text in _BLOCK.findall(user)]
        return Completion(
            content=self.answer(call.step, shown),
            reasoning_content=None,
            usage=cost(call, 100, 10),
            latency_s=0.0,
            attempts=1,
        )

    def answer(self, step: str, shown: list[tuple[int, str]]) -> str:
        if self.garble is not None and shown[0][1] == self.garble:
            return "I cannot decide."
        totals = {
            pid: self.quality[text] + (self.bias if pos == 0 else 0.0)
            for pos, (pid, text) in enumerate(shown)
        }
        best = max(totals, key=lambda p: (totals[p], -p))
        if step == "revision_check":
            return f"<preferred_version>{best}</preferred_version><reason>r</reason>"
        scores = "".join(
            f'<score id="{pid}">fidelity={v:.2f}, fluency={v:.2f}</score>'
            for pid, v in totals.items()
        )
        return (
            f"<scores>{scores}</scores><selected_index>{best}</selected_index>"
            f"<rationale>id {best}</rationale>"
        )


# --- multi-order judging --------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 4])
def test_the_aggregate_choice_is_the_same_for_every_order_of_four_candidates(k: int) -> None:
    """All 24 base orders of 4 candidates give one choice: with a position-neutral judge
    for K=2, and with a judge adding a large first-position bonus for K=4 (every
    candidate is shown first once, so the bonus lands on each equally)."""
    quality = {0: 6.0, 1: 7.5, 2: 7.0, 3: 5.0}
    bias = 3.0 if k == 4 else 0.0
    # A job's seed decides the first order: find a seed for each of the 24.
    seeds: dict[tuple[int, ...], str] = {}
    for i in itertools.count():
        seeds.setdefault(tuple(presentation_order([0, 1, 2, 3], f"job-{i}")), f"job-{i}")
        if len(seeds) == 24:
            break
    chosen = set()
    for perm in itertools.permutations(range(4)):
        orders = judge_orders([0, 1, 2, 3], k, seeds[perm])
        assert orders[0] == list(perm) and len(orders) == k
        judgements = []
        for order in orders:
            totals = {c: quality[c] + (bias if pos == 0 else 0) for pos, c in enumerate(order)}
            pick = max(totals, key=lambda c: totals[c])
            scores = [
                {"index": c, "scores": {"fidelity": totals[c]}, "total": totals[c]} for c in order
            ]
            judgements.append(Judgement(order=order, selected_index=pick, scores=scores))
        choice, top = choose(judgements, aggregate(judgements))
        chosen.add(choice)
        assert top
    assert chosen == {1}


def test_orders_rotate_so_each_candidate_moves() -> None:
    for n in (2, 3, 4, 8):
        orders = judge_orders(list(range(n)), 2, seed="s")
        assert len(orders) == 2 and all(sorted(o) == list(range(n)) for o in orders)
        # Nobody keeps their position across the two orders.
        assert all(orders[0].index(c) != orders[1].index(c) for c in range(n))
    square = judge_orders(list(range(4)), 4, seed="s")
    assert all(sorted(o[pos] for o in square) == [0, 1, 2, 3] for pos in range(4))


def test_a_first_position_judge_is_outvoted_by_the_mean(cfg: AppConfig) -> None:
    texts = [ZH["a"], ZH["b"], ZH["c"]]
    judge = Judge({ZH["a"]: 7.0, ZH["b"]: 8.0, ZH["c"]: 6.0}, bias=1.5)
    plan = make_plan(cfg, n=3, judge_orders=2)
    result = evaluate(
        context(cfg, plan, judge),
        Prior({"initial_translation": [cand(i, t) for i, t in enumerate(texts)]}),
    )
    assert len(judge.prompts) == 2
    assert result.selected_index == 1
    assert [sorted(j.order) for j in result.judgements] == [[0, 1, 2]] * 2
    assert result.judgements[0].order != result.judgements[1].order
    assert result.matches_top_aggregate
    assert result.metrics is not None and result.metrics.billed_calls == 2
    # Notes argue for their own text: the judge never sees them.
    assert not any("NOTE-" in p for p in judge.prompts)


def test_the_orders_are_asked_in_parallel(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 7.0, ZH["b"]: 8.0}, barrier=threading.Barrier(2))
    plan = make_plan(cfg, n=2, judge_orders=2)
    prior = Prior({"initial_translation": [cand(0, ZH["a"]), cand(1, ZH["b"])]})
    assert evaluate(context(cfg, plan, judge), prior).selected_index == 1


def test_disagreement_is_measured_and_flagged(cfg: AppConfig) -> None:
    # A judge that always prefers what it sees first: the two orders disagree.
    judge = Judge({ZH["a"]: 7.0, ZH["b"]: 7.0}, bias=2.0)
    plan = make_plan(cfg, n=2, judge_orders=2)
    prior = Prior({"initial_translation": [cand(0, ZH["a"]), cand(1, ZH["b"])]})
    result = evaluate(context(cfg, plan, judge), prior)
    assert result.agreement == 0.5 and result.low_agreement
    # Equal means: the tie rule (votes, then later mean position, then lowest index).
    assert result.selected_index == 0


def test_an_order_that_cannot_be_parsed_is_left_out(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 7.0, ZH["b"]: 8.0, ZH["c"]: 6.0}, garble=None)
    plan = make_plan(cfg, n=3, judge_orders=2)
    cands = [cand(0, ZH["a"]), cand(1, ZH["b"]), cand(2, ZH["c"])]
    first = judge_orders([0, 1, 2], 2, seed=f"{plan.job_id}:evaluation")[0]
    judge.garble = cands[first[0]].translation  # garbage whenever that text leads
    result = evaluate(context(cfg, plan, judge), Prior({"initial_translation": cands}))
    bad, good = result.judgements
    assert bad.error is not None and "selected_index" in bad.error and bad.selected_index is None
    assert good.error is None and result.selected_index == good.selected_index == 1
    assert result.agreement is None  # one usable order: nothing to agree with
    assert result.metrics is not None and result.metrics.billed_calls == 3  # 2 + 1


def test_no_usable_order_falls_back_without_favouring_candidate_zero(cfg: AppConfig) -> None:
    class Mute(Judge):
        def answer(self, step: str, shown: list[tuple[int, str]]) -> str:
            return "no verdict"

    picks = set()
    for job in range(8):
        plan = make_plan(cfg, n=3, job_id=f"fb-{job}", judge_orders=2)
        cands = [cand(i, ZH[k]) for i, k in enumerate("abc")]
        result = evaluate(context(cfg, plan, Mute({})), Prior({"initial_translation": cands}))
        assert result.method == "fallback_line_count" and not result.matches_top_aggregate
        picks.add(result.selected_index)
    assert len(picks) > 1  # equal line counts: ties go by the job's shuffled order


# --- gates ----------------------------------------------------------------------------------

GATES = GateSettings()


def reasons(text: str, source: str = POEM, src: str = "en", tgt: str = "zh-CN") -> list[str]:
    return gate_check(text, source=source, source_lang=src, target_lang=tgt, gates=GATES)


@pytest.mark.parametrize("key", list(ZH))
def test_real_translations_pass(key: str) -> None:
    assert reasons(ZH[key]) == []


def test_chinese_to_english_passes() -> None:
    src = "床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。"
    text = "Before my bed, the moonlight gleams,\nLike frost upon the ground it seems.\n"
    text += "I lift my head to view the moon,\nThen bow it, thinking of home soon."
    assert reasons(text, src, "zh-CN", "en") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (POEM, "copies the source"),
        (
            "The fog arrives\non small cat paws.\n\nIt sits, looks\nover port and town\nand goes.",
            "mostly not in the target script",
        ),
        ("雾来了，踮着猫的细步，坐着看港口城市然后走了。", "lines and stanza breaks"),
        ("\n".join(["雾来了"] * 30), "lines and stanza breaks"),
        (ZH["a"].replace("它静静坐着", "<initial_translation>它静静坐着"), "leaks protocol text"),
        (ZH["a"].replace("雾来了", "[L1] 雾来了"), "leaks protocol text: [L1]"),
        ("\n".join(line * 9 for line in ZH["a"].splitlines()), "the length expected"),
        ("雾\n猫\n\n坐\n港\n走", "the length expected"),
    ],
    ids=["copy", "wrong-script", "one-line", "padded-lines", "tag", "label", "long", "short"],
)
def test_each_defect_is_gated_with_its_reason(text: str, expected: str) -> None:
    found = reasons(text)
    assert any(expected in r for r in found), found


def test_gated_candidates_are_not_shown_and_all_gated_fails(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 5.0, ZH["b"]: 6.0})
    plan = make_plan(cfg, n=3, judge_orders=2)
    cands = [cand(0, POEM), cand(1, ZH["a"]), cand(2, ZH["b"])]
    result = evaluate(context(cfg, plan, judge), Prior({"initial_translation": cands}))
    assert result.selected_index == 2 and [g.index for g in result.gated] == [0]
    assert "copies the source" in result.gate_reasons(0)[0]
    assert not any("little cat feet" in p.split("</original_poem>")[1] for p in judge.prompts)
    with pytest.raises(StageFailed) as info:
        evaluate(context(cfg, plan, judge), Prior({"initial_translation": [cand(0, POEM)]}))
    assert "no candidate passed the checks before judging: candidate 0: copies" in str(info.value)


# --- guarded revision -----------------------------------------------------------------------


def test_a_better_revision_is_kept(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 6.0, ZH["b"]: 8.0}, bias=1.0)
    result = check_revision(context(cfg, make_plan(cfg), judge), revision_prior(ZH["a"], ZH["b"]))
    assert result.decision == "revision_kept" and result.kept
    assert result.orders == [["candidate", "revision"], ["revision", "candidate"]]
    assert result.preferred == ["revision", "revision"] and len(judge.prompts) == 2


def test_a_worse_revision_is_rejected(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 8.0, ZH["b"]: 6.0})
    result = check_revision(context(cfg, make_plan(cfg), judge), revision_prior(ZH["a"], ZH["b"]))
    assert result.decision == "revision_rejected"
    assert result.preferred == ["candidate", "candidate"]


def test_a_revision_that_wins_only_by_position_is_rejected(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 7.0, ZH["b"]: 7.2}, bias=1.0)
    result = check_revision(context(cfg, make_plan(cfg), judge), revision_prior(ZH["a"], ZH["b"]))
    assert result.preferred == ["candidate", "revision"]
    assert result.decision == "revision_rejected" and "did not win every order" in result.reason


def test_a_gated_or_unchanged_revision_costs_no_call(cfg: AppConfig) -> None:
    judge = Judge({})
    ctx = context(cfg, make_plan(cfg), judge)
    gated = check_revision(ctx, revision_prior(ZH["a"], ZH["a"] + "\n[L7] extra"))
    assert gated.decision == "revision_rejected" and gated.gate_reasons
    same = check_revision(ctx, revision_prior(ZH["a"], ZH["a"] + "\n"))
    assert same.decision == "revision_kept" and "changes no line" in same.reason
    assert judge.prompts == []


def test_an_unusable_order_keeps_the_candidate(cfg: AppConfig) -> None:
    judge = Judge({ZH["a"]: 6.0, ZH["b"]: 8.0}, garble=ZH["b"])
    result = check_revision(context(cfg, make_plan(cfg), judge), revision_prior(ZH["a"], ZH["b"]))
    assert result.preferred == ["revision", None]
    # No verdict is not a rejection: unchecked, the candidate kept, and a warning says so.
    assert result.decision == "revision_unchecked" and not result.kept
    assert [w.kind for w in result.warnings] == ["revision_check_unavailable"]


def test_the_editor_sees_the_runner_ups_but_not_gated_or_failed_ones(cfg: AppConfig) -> None:
    from vpsweb.domain.models import GateResult
    from vpsweb.stages.review import editor_review

    judge = Judge({})
    failed = CandidateResult(index=3, variant="v", status="failed", error="HTTP 500")
    cands = [cand(0, ZH["a"]), cand(1, ZH["b"]), cand(2, POEM), failed]
    ev = EvaluationResult(
        selected_index=0,
        rationale="r",
        method="judge",
        gated=[GateResult(index=2, reasons=["copies the source"])],
    )
    judge.answer = lambda step, shown: "<editor_suggestions>1. [L1] x</editor_suggestions>"
    editor_review(
        context(cfg, make_plan(cfg), judge),
        Prior({"initial_translation": cands, "evaluation": ev}),
        None,
    )
    (prompt,) = judge.prompts
    assert '<other_candidate id="1">' in prompt and ZH["b"].splitlines()[0] in prompt
    assert '<other_candidate id="2">' not in prompt and '<other_candidate id="3">' not in prompt
    assert '<other_candidate id="0">' not in prompt
