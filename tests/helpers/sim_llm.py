"""An LLM test double that answers as the offline simulator does, in process.

Its answers are the simulator's own (``vpsweb.simulator.answers.respond``) for the
call's messages and model name, so a model-name directive (``sim-glossmiss``) acts as
it does over HTTP, while a whole job runs in milliseconds in the in-process runner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.helpers.stage_calls import cost
from vpsweb.config import AppConfig
from vpsweb.domain.plan import StepCall
from vpsweb.llm.client import Completion
from vpsweb.simulator import answers


class SimLLM:
    """Answers every call as the simulator would; records (step, model, messages)."""

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg  # prices the calls, the test models (sim-glossmiss, ...) included
        self.calls: list[tuple[str, str, list[dict[str, str]]]] = []
        self.lock = threading.Lock()

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion:
        with self.lock:
            self.calls.append((call.step, call.model, messages))
        text = "\n".join(m["content"] for m in messages)
        model = self.cfg.models.models[call.model].name  # the name the simulator is sent
        got = answers.respond(text, temperature=call.temperature, seed=0, model=model)
        return Completion(
            content=got.content,
            reasoning_content=None,
            usage=cost(call, 100, 20, self.cfg),
            latency_s=0.01,
            attempts=1,
        )

    def prompts(self, step: str) -> list[str]:
        """The user messages sent for ``step``, in call order."""
        return [m[-1]["content"] for s, _, m in self.calls if s == step]
