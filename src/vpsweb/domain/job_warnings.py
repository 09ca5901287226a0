"""Warnings on a job that succeeded: a step that fell back, said as what it is.

A job whose judge never answered still delivers a real translation that was paid
for, so its status stays "succeeded" (failing it would throw that work away, and
a retry would pay again for the same fallback); but "succeeded" alone would claim
that the pick was judged, or that a revision was checked. So the step that fell
back records a ``JobWarning``: its ``kind`` is counted (`vpsweb stats`, /metrics:
``vpsweb_jobs_with_warnings_total``), its ``message`` tells the reader why (CLI,
web page, Markdown). Pure data: the domain core imports it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

WarningKind = Literal[
    "judge_unavailable",  # no judge order gave a verdict: a rule picked the candidate
    "revision_check_unavailable",  # the revision check's judge gave no verdict (errors)
]
WARNING_KINDS: tuple[str, ...] = get_args(WarningKind)


class JobWarning(BaseModel):
    """One fallback: which kind, in which stage (display name), and why, in a sentence."""

    model_config = ConfigDict(extra="forbid")

    kind: WarningKind
    stage: str
    message: str


def warning_text(output: object) -> str:
    """A stage output's warnings as one line for its progress event ("" for none)."""
    found: list[JobWarning] = getattr(output, "warnings", None) or []
    return "; ".join(w.message for w in found)
