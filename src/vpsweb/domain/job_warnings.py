"""Warnings on a job that succeeded: a step that fell back, said as what it is.

A job whose judge never answered still delivers a real translation that was paid
for, so its status stays "succeeded" (failing it would throw that work away, and
a retry would pay again for the same fallback); but "succeeded" alone would claim
that the pick was judged, or that a revision was checked. So the step that fell
back records a ``JobWarning``: its ``kind`` is counted (`vpsweb stats`, /metrics:
``vpsweb_jobs_with_warnings_total``), its ``message`` tells the reader why (CLI,
web page, Markdown). A step answered by a fallback model (pipeline.yaml
``fallback``) says so the same way, as ``model_fallback``, derived from its metrics.
Pure data: the domain core imports it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

WarningKind = Literal[
    "judge_unavailable",  # no judge order gave a verdict: a rule picked the candidate
    "revision_check_unavailable",  # the revision check's judge gave no verdict (errors)
    "model_fallback",  # a step's model failed it; a fallback model answered instead
]
WARNING_KINDS: tuple[str, ...] = get_args(WarningKind)


class JobWarning(BaseModel):
    """One fallback: which kind, in which stage (display name), and why, in a sentence."""

    model_config = ConfigDict(extra="forbid")

    kind: WarningKind
    stage: str
    message: str


def fallback_warning(stage: str, output: object) -> JobWarning | None:
    """A ``model_fallback`` warning for a step output whose metrics say a fallback model
    answered (``StepMetrics.fallback_from``), else None. Derived from the metrics, so a
    stage needs no code of its own for it."""
    metrics = getattr(output, "metrics", None)
    planned = getattr(metrics, "fallback_from", None)
    if metrics is None or planned is None:
        return None
    index = getattr(output, "index", None)  # a candidate: say which one
    who = f"candidate #{index}" if isinstance(index, int) else (stage or "the step")
    message = (
        f"{who} was answered by the fallback model {metrics.model.model}, because its "
        f"model {planned} failed: {metrics.fallback_reason or 'no cause recorded'}"
    )
    return JobWarning(kind="model_fallback", stage=stage, message=message)


def output_warnings(stage: str, output: object) -> list[JobWarning]:
    """A stage output's warnings: those it made, then a fallback model's, if any."""
    found: list[JobWarning] = list(getattr(output, "warnings", None) or [])
    fell = fallback_warning(stage, output)
    return [*found, fell] if fell is not None else found


def warning_text(output: object) -> str:
    """A stage output's warnings as one line for its progress event ("" for none)."""
    return "; ".join(w.message for w in output_warnings("", output))
