"""An LLM test double answering each step with canned text, and a plan for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.helpers.poems import JING_YE_SI as POEM
from tests.helpers.stage_calls import cost
from vpsweb.config import load_config
from vpsweb.domain.plan import StepCall, build_plan
from vpsweb.llm.client import Completion

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
