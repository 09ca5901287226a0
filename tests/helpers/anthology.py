"""A batch's items for the anthology and summary tests, from real in-process jobs.

Each translated poem is a whole job run through the in-process runner (the stages,
the gates, the judge in two orders, result assembly) with an LLM double that answers
in the real tag format, so the outputs are what a worker would have produced. The
double's answers carry whatever the test plants: a hostile title, a long poem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.helpers.poems import JING_YE_SI
from tests.helpers.runner_doubles import TRANSLATION
from tests.helpers.stage_calls import cost
from vpsweb.batches.anthology import AnthologyItem
from vpsweb.config import load_config
from vpsweb.domain.plan import StepCall, build_plan
from vpsweb.domain.runner import run_job
from vpsweb.llm.client import Completion

# Markup a title, a poet's name or a poem may hold; none of it may run or render.
# (The gates keep <tag>-like text out of a translation, but not a tag with attributes.)
SCRIPT = "<script>window.__ran = 'script'</script>"
IMG = "<img src=x onerror=\"window.__ran = 'img'\">"
HOSTILE_TITLE = f'{SCRIPT} "Spring" & <b>View</b>'
HOSTILE_POET = f"Du Fu {IMG}"
# Du Fu, "春望" (first four lines), with markup planted in the source poem.
CHUN_WANG = f"国破山河在，\n城春草木深。{SCRIPT}\n\n感时花溅泪，\n恨别鸟惊心。"
CHUN_WANG_EN = (
    "The state is broken; hills and rivers stay.\n"
    f"Spring in the city: grass & trees grow 'deep'. {IMG}\n\n"
    "Moved by the times, flowers shed tears;\nhating to part, the birds startle the heart."
)


def answers(title: str, poet: str, translation: str) -> dict[str, str]:
    """Each step's answer in the protocol's tags (the judges always name the second)."""
    return {
        "initial_translation": (
            f"<translated_poem_title>{title}</translated_poem_title>"
            f"<translated_poet_name>{poet}</translated_poet_name>"
            f"<initial_translation>{translation}</initial_translation>"
            "<initial_translation_notes>kept the lines</initial_translation_notes>"
        ),
        "evaluation": "<selected_index>2</selected_index><rationale>best</rationale>",
        "editor_review": "<editor_suggestions>1. [L2] sharper</editor_suggestions>",
        "translator_revision": f"<revised_translation>{translation}</revised_translation>",
        "revision_check": "<preferred_version>2</preferred_version><reason>r</reason>",
    }


class PoemLLM:
    """Answers each step with its canned text (thread-safe: it only reads)."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion:
        return Completion(
            content=self.replies[call.step],
            reasoning_content=None,
            usage=cost(call, 100, 20),
            latency_s=0.01,
            attempts=1,
        )


def request(poem: str, **fields: Any) -> dict[str, Any]:
    return {"poem": poem, "source_lang": "zh-CN", "target_lang": "en", **fields}


def translated(
    name: str,
    request_fields: dict[str, Any],
    *,
    title: str,
    poet: str,
    translation: str,
) -> AnthologyItem:
    """A poem translated by a whole in-process job."""
    config = load_config()
    plan = build_plan(request_fields, config, job_id=f"job-{name}"[:12], offline=True)
    output = run_job(plan, config, PoemLLM(answers(title, poet, translation)))
    return AnthologyItem(
        name=name,
        where=f"poems/{name}.txt",
        request=plan.request,
        status="succeeded",
        output=output,
        job_id=output.job_id,
    )


def not_translated(
    name: str,
    status: str,
    error: str | None,
    request_fields: dict[str, Any],
    *,
    where: str = "poems.csv row 3",
) -> AnthologyItem:
    config = load_config()
    plan = build_plan(request_fields, config, job_id=f"job-{name}"[:12], offline=True)
    return AnthologyItem(
        name=name,
        where=where,
        request=plan.request,
        status=status,
        error=error,
        job_id=f"job-{name}"[:12],
    )


def sample_batch() -> list[AnthologyItem]:
    """Four poems: two translated (one with markup planted in its source, titles and
    poet), one failed, one cancelled, in that order."""
    return [
        translated(
            "li-bai-jing-ye-si",
            request(JING_YE_SI, title="静夜思", author="李白", parallel_count=3),
            title="Quiet Night Thought",
            poet="Li Bai",
            translation=TRANSLATION,
        ),
        translated(
            "du-fu-chun-wang",
            request(CHUN_WANG, title='春望 "Spring View" & more', author="杜甫", parallel_count=1),
            title=HOSTILE_TITLE,
            poet=HOSTILE_POET,
            translation=CHUN_WANG_EN,
        ),
        not_translated(
            "wang-wei",
            "failed",
            "Editor Review failed: HTTP 401 from simulator/sim-fail401: <b>bad key</b>",
            request("空山不见人，\n但闻人语响。", title="鹿柴", author="王维"),
        ),
        not_translated(
            "meng-haoran",
            "cancelled",
            None,
            request("春眠不觉晓，\n处处闻啼鸟。", title="春晓", author="孟浩然"),
        ),
    ]


def long_poem(lines: int = 90) -> AnthologyItem:
    """A poem longer than a printed page, in stanzas of four lines."""
    source = "\n".join(
        f"第{i}行明月光。" + ("\n" if i % 4 == 0 else "") for i in range(1, lines + 1)
    )
    translation = "\n".join(
        f"Line {i}: the bright moon over the frost." + ("\n" if i % 4 == 0 else "")
        for i in range(1, lines + 1)
    )
    return translated(
        "long-poem",
        request(source, title="长诗", author="无名氏", parallel_count=2),
        title="A Long Poem",
        poet="Anonymous",
        translation=translation,
    )
