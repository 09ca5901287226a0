"""Manual mode: a person answers a step's prompt instead of an API.

The stages do not know: a manual step runs the same stage function with an LLM
stand-in. Without a stored answer it raises AwaitingAnswer carrying the rendered
prompt (which the worker parks in the store for the person, ending its task);
with one, it returns the answer as a free, instant completion by the model
"manual", so the same parsing applies and the result says who answered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from vpsweb.domain.models import ModelInfo, Usage
from vpsweb.domain.plan import StepCall
from vpsweb.errors import AwaitingAnswer
from vpsweb.llm.completion import Completion
from vpsweb.stages import candidate, evaluation, review, revision, revision_check
from vpsweb.stages.table import STAGES, Stage

MANUAL = ModelInfo(model="manual", provider="manual", api_model="manual")

# Per stage: raises ParseError unless a person's answer (the text) to its prompt
# (the second argument) is usable, so a bad paste is refused before it is stored.
CHECKS: dict[str, Callable[[str, str], None]] = {
    "initial_translation": candidate.check_answer,
    "evaluation": evaluation.check_answer,
    "editor_review": review.check_answer,
    "translator_revision": revision.check_answer,
    "revision_check": revision_check.check_answer,
}


def check_answer(s: Stage, text: str, prompt: str) -> None:
    """Raise ParseError unless ``text`` answers stage ``s``'s ``prompt`` usably."""
    CHECKS[s.name](text, prompt)


class PendingPrompt(BaseModel):
    """A prompt waiting for a person: paste ``messages`` into any chat UI (or send them
    to any OpenAI-compatible API) and give the answer to ``Job.answer(key, text)``."""

    model_config = ConfigDict(extra="forbid")

    key: str  # candidate-0, evaluation, ...
    stage: str  # the stage's name
    display_name: str
    messages: list[dict[str, str]]
    since: datetime

    def text(self) -> str:
        """The prompt as one text to paste: the system part, then the user part."""
        return "\n\n".join(m["content"] for m in self.messages)


class ManualLLM:
    """What a manual step calls instead of an API: the stored answer, or AwaitingAnswer
    with the prompt the step would have sent."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion:
        if self.answer is None:
            raise AwaitingAnswer(messages)
        usage = Usage(currency="USD")
        return Completion(
            content=self.answer,
            reasoning_content=None,
            usage=usage,
            latency_s=0.0,
            attempts=0,
            finish_reason="stop",
            model=MANUAL,
        )


def stage_of(key: str) -> Stage:
    """The stage a step key belongs to (candidate-1 -> the fan-out stage)."""
    for s in STAGES:
        if (s.fan_out and key.startswith(f"{s.item}-") and key[len(s.item) + 1 :].isdigit()) or (
            not s.fan_out and key == s.name
        ):
            return s
    raise KeyError(key)


def manual_keys(stages: list[str], keys_of: Callable[[Stage], list[str]]) -> list[str]:
    """Every step key answered by hand, in workflow order."""
    return [k for s in STAGES if s.name in stages for k in keys_of(s)]
