"""Each stage's line in the progress stream when it ends, keyed by the stage table's
names: what a live display prints ("3 of 3 candidates ...", "selected #1 ...")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpsweb.stages import candidate, evaluation, review, revision, revision_check
from vpsweb.stages.table import Stage

SUMMARIES: dict[str, Callable[[Any], str]] = {
    "initial_translation": candidate.summary,
    "evaluation": evaluation.summary,
    "editor_review": review.summary,
    "translator_revision": revision.summary,
    "revision_check": revision_check.summary,
}


def summary(s: Stage, output: Any) -> str:
    """The end-of-stage line for ``output`` (a list of items for a fan-out stage)."""
    return SUMMARIES[s.name](output)
