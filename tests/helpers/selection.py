"""Plans, candidates and priors for the selection-quality tests."""

from __future__ import annotations

from typing import Any

from tests.helpers.poems import POEM
from vpsweb.config import AppConfig
from vpsweb.domain.models import CandidateResult, EvaluationResult, Revision
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.stages.shared import Prior

ZH = {
    "a": "雾来了\n踮着猫的细步。\n\n它静静坐着\n俯瞰港口和城市\n然后继续前行。",
    "b": "雾来临\n踩着小猫的脚。\n\n它坐下眺望\n港湾与城市\n随后又走开。",
    "c": "雾走来\n迈着猫儿轻步。\n\n它蹲坐凝望\n海港和城\n再悄悄离去。",
    "d": "大雾到\n像猫一样轻轻。\n\n坐看\n港口城市\n又走了。",
}


def make_plan(cfg: AppConfig, n: int = 4, job_id: str = "sel", **changes: Any) -> JobPlan:
    data = {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN", "parallel_count": n}
    plan = build_plan(data, cfg, job_id=job_id, offline=True)
    return plan.model_copy(update=changes)


def cand(index: int, text: str) -> CandidateResult:
    return CandidateResult(
        index=index, variant="v", status="succeeded", translation=text, notes=f"NOTE-{index}"
    )


def revision_prior(chosen: str, revised: str) -> Prior:
    ev = EvaluationResult(selected_index=0, rationale="r", method="judge")
    return Prior(
        {
            "initial_translation": [cand(0, chosen)],
            "evaluation": ev,
            "translator_revision": Revision(translation=revised),
        }
    )
