"""Plans and step calls for the LLM client tests."""

from __future__ import annotations

from typing import Any

from tests.helpers.poems import JING_YE_SI as POEM
from vpsweb.config import AppConfig
from vpsweb.domain.plan import JobPlan, StepCall, build_plan

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def plan_for(cfg: AppConfig, *, offline: bool, **changes: Any) -> JobPlan:
    data: dict[str, Any] = {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en"}
    data.update(changes)
    return build_plan(data, cfg, job_id="t", offline=offline)


def candidate_call(cfg: AppConfig, **changes: Any) -> StepCall:
    return plan_for(cfg, offline=False).candidates[0].call.model_copy(update=changes)
