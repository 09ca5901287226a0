"""Manual-mode answers and waits shared by the manual-mode tests."""

from __future__ import annotations

from tests.helpers.cluster import Cluster

ZH = "雾来了\n踮着猫的细步。\n\n它静静坐着\n俯瞰港口和城市\n然后继续前行。"


ZH2 = "雾来临\n踩着小猫的脚。\n\n它坐下眺望\n港湾与城市\n随后又走开。"
ANSWERS = {
    "candidate": (
        "<translated_poem_title>雾</translated_poem_title>"
        "<translated_poet_name>桑德堡</translated_poet_name>"
        "<initial_translation>{text}</initial_translation>"
        "<initial_translation_notes>kept the cat</initial_translation_notes>"
    ),
    "evaluation": "<selected_index>2</selected_index><rationale>the second is closer</rationale>",
    "editor_review": "<editor_suggestions>1. [L2] 'little' is lost</editor_suggestions>",
    "translator_revision": (
        "<revised_translation>" + ZH2.replace("小猫", "猫儿") + "</revised_translation>"
        "<revised_translation_notes>took the suggestion</revised_translation_notes>"
    ),
    "revision_check": "<preferred_version>2</preferred_version><reason>closer</reason>",
}
STEPS_AFTER_REVIEW = ("editor_review", "translator_revision", "revision_check")


def answer_for(key: str) -> str:
    if key.startswith("candidate-"):
        return ANSWERS["candidate"].format(text=ZH if key.endswith("0") else ZH2)
    return ANSWERS[key]


def wait_pending(c: Cluster, job, keys: set[str]) -> None:
    c.wait_for(lambda: {p.key for p in job.pending()} >= keys, 60, f"prompts {sorted(keys)}")
