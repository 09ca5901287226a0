"""What progress looks like: event kinds, events, snapshots and milestones.

Pure data and arithmetic; the store (vpsweb.storage) writes and reads them.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vpsweb.errors import one_line


class EventKind(StrEnum):
    JOB_QUEUED = "job_queued"
    STAGE_STARTED = "stage_started"
    STAGE_COMPLETED = "stage_completed"
    STAGE_FAILED = "stage_failed"
    CANDIDATE_FINISHED = "candidate_finished"  # one candidate, with its outcome
    MILESTONE = "milestone"  # k of N candidates finished, at about 1/3, 2/3, all
    WAITING_FOR_ANSWER = "waiting_for_answer"  # a manual step's prompt is parked (key)
    ANSWER_RECEIVED = "answer_received"  # a person answered a manual prompt (key)
    # A call waits for its provider's quota (status "waiting"), or got it after such a
    # wait (status "running"); key: the step's.
    WAITING_FOR_QUOTA = "waiting_for_quota"
    WARNING = "warning"  # said by the client to its reader (no worker, say); never stored
    JOB_FINISHED = "job_finished"  # terminal: nothing follows it


class ProgressEvent(BaseModel):
    """One entry of a job's event stream."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    event: EventKind
    stage: str = ""
    status: str = ""
    progress_percent: float = 0.0
    parallel_progress: str = ""
    successful: int | None = None
    failed: int | None = None
    late: int | None = None  # candidates stopped by the straggler policy, on milestones
    message: str = ""
    model: str = ""
    error: str = ""
    ts: float = 0.0
    index: int | None = None  # a candidate's, on candidate_finished
    variant: str = ""
    duration_s: float | None = None
    key: str = ""  # a manual prompt's, on waiting_for_answer / answer_received
    warning: str = ""  # on stage_completed: what the stage fell back on (job_warnings)
    # On the evaluation's stage_completed: the candidates kept from the judge by a
    # deterministic check, index -> reasons in one line (the stream stores it as JSON).
    gated: dict[int, str] = Field(default_factory=dict)
    # On the evaluation's and the revision check's stage_completed: the texts judged
    # but flagged (glossary misses), candidate index (-1: the revision) -> one line.
    flagged: dict[int, str] = Field(default_factory=dict)

    @field_validator("error")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # Shown in one-line progress output: an entry from an older writer (or any
        # writer) must not break the line.
        return one_line(value)

    @field_validator("gated", "flagged", mode="before")
    @classmethod
    def _from_stream(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @property
    def terminal(self) -> bool:
        return self.event is EventKind.JOB_FINISHED

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[str, str]) -> ProgressEvent:
        data: dict[str, Any] = {k: v for k, v in fields.items() if v != ""}
        return cls(id=entry_id, **data)


class ProgressSnapshot(BaseModel):
    """The latest state of a job's progress (what the last event said)."""

    model_config = ConfigDict(extra="ignore")

    stage: str = ""
    status: str = "queued"
    progress_percent: float = 0.0
    parallel_progress: str = ""
    successful: int = 0
    failed: int = 0
    late: int = 0
    message: str = ""
    terminal: bool = False


def gated_field(output: object) -> str:
    """A stage output's gated candidates as the stream stores them ("" for none): what
    ``ProgressEvent.gated`` reads back."""
    found = getattr(output, "gated", None) or []
    return json.dumps({g.index: one_line("; ".join(g.reasons)) for g in found}) if found else ""


def flagged_field(output: object) -> str:
    """A stage output's flagged texts as the stream stores them ("" for none): an
    evaluation's flagged candidates, a revision check's flagged revision (-1)."""
    found = {g.index: g.reasons for g in getattr(output, "flagged", None) or []}
    if isinstance(revision := getattr(output, "flags", None), list) and revision:
        found[-1] = revision
    return json.dumps({i: one_line("; ".join(r)) for i, r in found.items()}) if found else ""


def milestones(n: int) -> list[int]:
    """Finished-candidate counts at which progress is published: about 1/3, 2/3, all."""
    if n <= 2:
        return list(range(1, n + 1))
    return sorted({math.ceil(n / 3), math.ceil(2 * n / 3), n})
