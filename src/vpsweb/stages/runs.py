"""What each stage does, keyed by the stage table's names.

``RUN``: the function that makes a stage's output from its context, the outputs
of earlier stages and (for a fan-out stage) the item's index. ``LOST``: for a
fan-out stage, the record of an item whose output is gone, so the stage after it
can still go on with the others.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from vpsweb.domain.plan import JobPlan
from vpsweb.stages import candidate, evaluation, review, revision, revision_check
from vpsweb.stages.shared import Prior, StageContext
from vpsweb.stages.table import Stage

RunFn = Callable[[StageContext, Prior, int | None], BaseModel]
LostFn = Callable[[JobPlan, int, str], BaseModel]

RUN: dict[str, RunFn] = {
    "initial_translation": candidate.translate_candidate,
    "evaluation": evaluation.evaluate,
    "editor_review": review.editor_review,
    "translator_revision": revision.translator_revision,
    "revision_check": revision_check.check_revision,
}

LOST: dict[str, LostFn] = {
    "initial_translation": candidate.lost,
}


def run(s: Stage, ctx: StageContext, prior: Prior, index: int | None) -> BaseModel:
    return RUN[s.name](ctx, prior, index)


def lost(s: Stage, plan: JobPlan, index: int, error: str) -> BaseModel:
    """The record of item ``index`` of fan-out stage ``s`` whose output is gone."""
    return LOST[s.name](plan, index, error)
