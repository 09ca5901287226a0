"""A scripted LLM test double for the stage tests, and the plans and candidates they use."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.helpers.poems import JING_YE_SI as POEM
from tests.helpers.stage_calls import (
    context,
    cost,
)
from vpsweb.config import AppConfig
from vpsweb.config.schema import GateSettings
from vpsweb.domain.models import CandidateResult
from vpsweb.domain.plan import JobPlan, StepCall, build_plan
from vpsweb.llm.client import Completion
from vpsweb.stages.shared import StageContext


@dataclass
class Reply:
    content: str
    prompt_tokens: int = 1000
    completion_tokens: int = 200
    attempts: int = 1
    sim_latency_ms: float | None = None


Answer = str | Reply | BaseException | Callable[[StepCall, list[dict[str, str]]], Any]


class ScriptedLLM:
    """Returns queued answers in order and records every call's messages.

    Like the real client it calls ``check`` before making a call. An answer may be
    a string, a Reply (custom usage), an exception to raise, or a callable that
    inspects (call, messages) and returns one of those.
    """

    def __init__(self, *answers: Answer) -> None:
        self.answers: deque[Answer] = deque(answers)
        self.calls: list[tuple[StepCall, list[dict[str, str]]]] = []

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion:
        if check is not None:
            check()
        self.calls.append((call, messages))
        if not self.answers:
            raise AssertionError(f"unexpected extra LLM call #{len(self.calls)}")
        answer = self.answers.popleft()
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(call, messages)
        if isinstance(answer, BaseException):
            raise answer
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        return Completion(
            content=reply.content,
            reasoning_content=None,
            usage=cost(call, reply.prompt_tokens, reply.completion_tokens),
            latency_s=0.25,
            attempts=reply.attempts,
            sim_latency_ms=reply.sim_latency_ms,
        )

    def user(self, i: int = -1) -> str:
        return self.calls[i][1][1]["content"]

    def system(self, i: int = -1) -> str:
        return self.calls[i][1][0]["content"]


def make_plan(cfg: AppConfig, *, job_id: str = "t", **changes: Any) -> JobPlan:
    data: dict[str, Any] = {
        "poem": POEM,
        "source_lang": "zh-CN",
        "target_lang": "en",
        "title": "静夜思",
        "author": "李白",
        "parallel_count": 3,
    }
    data.update(changes)
    plan = build_plan(data, cfg, job_id=job_id, offline=True)
    # One judge call and no gates: these tests pin the mechanics of one call (mapping,
    # re-asks, fallback); multi-order judging and the gates have test_selection_quality.
    return plan.model_copy(update={"judge_orders": 1, "gates": GateSettings(enabled=False)})


def ctx_for(cfg: AppConfig, plan: JobPlan, llm: ScriptedLLM, check=None) -> StageContext:
    return context(cfg, plan, llm, check)


def candidate(index: int, translation: str, *, ok: bool = True, **extra: Any) -> CandidateResult:
    if not ok:
        return CandidateResult(
            index=index,
            variant=extra.pop("variant", "lyric"),
            status="failed",
            error=extra.pop("error", f"boom {index}"),
            **extra,
        )
    return CandidateResult(
        index=index,
        variant=extra.pop("variant", "literal"),
        status="succeeded",
        translated_title=extra.pop("translated_title", f"Title {index}"),
        translation=translation,
        notes=extra.pop("notes", f"notes {index}"),
        **extra,
    )


THREE = [
    candidate(0, "zero line a\nzero line b"),
    candidate(1, "", ok=False, error="HTTP 500 from provider"),
    candidate(2, "two line a\ntwo line b\ntwo line c\ntwo line d"),
]
CHOSEN = candidate(
    2,
    "Before my bed, moonlight;\nfrost on the ground?\n\nHead up.\nHead down.",
    translated_title="Quiet Night",
    notes="kept four lines",
)
