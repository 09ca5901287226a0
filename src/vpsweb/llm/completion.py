"""What a stage gets back from a model, and what it calls: light on purpose (no SDK),
so that the domain (manual answers) and the stages import them without loading the
``openai`` SDK, which ``vpsweb.llm.client`` needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from vpsweb.domain.models import ModelInfo, Usage

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.domain.plan import StepCall


@dataclass(frozen=True)
class Completion:
    content: str
    reasoning_content: str | None
    usage: Usage
    latency_s: float  # wall time of the successful HTTP call
    attempts: int  # HTTP calls made, including failed ones
    sim_latency_ms: float | None = None  # latency the simulator applied, if it is one
    finish_reason: str | None = None  # "length": cut off at max_tokens
    model: ModelInfo | None = None  # what answered, as this worker resolved it
    # The provider said no request is left in its window (x-ratelimit-remaining-*: 0):
    # every worker pauses this long.
    pause_s: float | None = None


class LLMClient(Protocol):
    """What stages need; tests pass a double, production passes OpenAICompatibleClient."""

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion: ...
