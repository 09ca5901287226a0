"""Celery routing per stage, keyed by the stage table's names: task name, default queue.

Task names are wire protocol (a running worker and a newer client must agree):
never rename one. Queues are defaults; ``routing`` in pipeline.yaml overrides
them (``AppConfig.routing()``). No Celery import here: the config reads it.
"""

from __future__ import annotations

TASK_NAMES: dict[str, str] = {
    "initial_translation": "vpsweb.candidate",
    "evaluation": "vpsweb.evaluate",
    "editor_review": "vpsweb.editor_review",
    "translator_revision": "vpsweb.translator_revision",
    "revision_check": "vpsweb.revision_check",
}

QUEUES: dict[str, str] = {
    "initial_translation": "vpsweb.candidates",
    "evaluation": "vpsweb.evaluation",
    "editor_review": "vpsweb.review",
    "translator_revision": "vpsweb.review",
    "revision_check": "vpsweb.evaluation",
}

# The canvas's last task, after every stage: assembles and stores the result.
FINALIZE_TASK = "vpsweb.finalize"
FINALIZE_QUEUE = "vpsweb.evaluation"


def default_routing() -> dict[str, str]:
    return {**QUEUES, "finalize": FINALIZE_QUEUE}
