"""A job's progress as its events describe it so far: what every display draws.

``JobView.of(job_id, plan)`` starts with every stage and candidate waiting;
``apply(event)`` folds in one event (in stream order; a percentage that arrives
lower than one already shown never moves the bar back). Times are the events' own
timestamps, so a job followed late (replayed) shows its real ones. The web server
sends ``model_dump(mode="json")`` with every event; the page only draws it.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, Field, computed_field

from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.stages.table import STAGES, stage_bounds
from vpsweb.view.marks import (
    CSS,
    LATE_CAUSE,
    Marked,
    StageStatus,
    clock,
    stage_label,
)

FAN_OUT = STAGES[0].display_name
ITEM_KEY = f"{STAGES[0].item}-"  # a fan-out step's key: candidate-0, candidate-1, ...
QUOTA: Final = "waiting_for_quota"
# A stage or candidate still under way: a quota event may change its status.
UNDER_WAY = ("waiting", "running", QUOTA)
STATUS_TEXT = {
    "queued": "Queued: waiting for a worker.",
    "running": "Running.",
    "waiting": "Waiting for your answers (manual mode).",
    "succeeded": "Job succeeded.",
    "failed": "Job failed",
    "cancelled": "Job cancelled",
}


class StageRow(BaseModel):
    name: str  # display name
    status: StageStatus = "waiting"
    model: str = ""
    message: str = ""
    started: float | None = None  # epoch seconds, from the events
    ended: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        return stage_label(self.status)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def css(self) -> str:
        return CSS[self.status]

    def elapsed(self, now: float) -> float | None:
        return None if self.started is None else (self.ended or now) - self.started


class CandidateRow(Marked):
    index: int
    variant: str = ""
    model: str = ""
    same_as: int | None = None  # failed for the same cause as this earlier candidate
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def time(self) -> str:
        return clock(self.duration_s)

    def elapsed(self, now: float) -> float | None:
        return None if self.started is None else (self.ended or now) - self.started


class JobView(BaseModel):
    job_id: str
    status: str = "queued"  # the job's: queued, running, waiting, succeeded, failed, cancelled
    status_text: str = STATUS_TEXT["queued"]
    percent: float = 0.0  # never backwards
    stages: list[StageRow] = Field(default_factory=list)
    candidates: list[CandidateRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # a stage fell back: kept to the end
    # Texts judged all the same with a finding (glossary misses): "candidate #1: glossary:
    # ...", "revision: glossary: ...", kept to the end.
    flags: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)  # the follower's own (no worker): come, go
    error: str = ""
    started: float | None = None
    ended: float | None = None
    fan_out_span: tuple[float, float] = (0.0, 0.0)  # percent at the fan-out's start, end

    @classmethod
    def of(cls, job_id: str, plan: JobPlan | None) -> JobView:
        view = cls(job_id=job_id, stages=[StageRow(name=s.display_name) for s in STAGES])
        for c in plan.candidates if plan else []:
            view.candidates.append(
                CandidateRow(index=c.index, variant=c.variant, model=c.call.model)
            )
        if plan is not None:
            view.fan_out_span = stage_bounds(plan.progress_weights, STAGES[0].name)
        return view

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ended_job(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def result_ready(self) -> bool:
        return self.status == "succeeded"

    def stage(self, name: str) -> StageRow | None:
        return next((s for s in self.stages if s.name == name), None)

    def candidate(self, index: int) -> CandidateRow | None:
        return next((c for c in self.candidates if c.index == index), None)

    def causes_shown(self) -> bool:
        """Whether every candidate ended failed with its cause on screen (then a job that
        failed for want of candidates need not repeat them)."""
        rows = self.candidates
        return bool(rows) and all(r.ended is not None and r.status == "failed" for r in rows)

    def apply(self, e: ProgressEvent) -> None:
        """Fold in one event."""
        self.percent = max(self.percent, min(e.progress_percent, 100.0))
        if e.event is EventKind.WARNING:
            self._notice(e)
        elif e.event is EventKind.JOB_QUEUED:
            self.started = e.ts or self.started
        elif e.event is EventKind.CANDIDATE_FINISHED and e.index is not None:
            self._candidate(e, e.index)
        elif e.event is EventKind.JOB_FINISHED:
            self._finished(e)
        elif (stage := self.stage(e.stage)) is not None:
            self._stage(e, stage)

    def _notice(self, e: ProgressEvent) -> None:
        if e.status == "resolved":
            self.notices = [n for n in self.notices if n != e.message]
        elif e.message not in self.notices:
            self.notices.append(e.message)

    def _stage(self, e: ProgressEvent, stage: StageRow) -> None:
        kind = e.event
        if kind is EventKind.STAGE_STARTED:
            stage.status, stage.model, stage.started = "running", e.model, e.ts
            stage.message = e.message
            self._say("running", f"Running: {e.stage}")
            for row in self.candidates if e.stage == FAN_OUT else ():
                if row.status == "waiting":
                    row.status, row.started = "running", e.ts
        elif kind is EventKind.WAITING_FOR_QUOTA:
            self._quota(e, stage)
        elif kind is EventKind.WAITING_FOR_ANSWER:
            stage.status = "waiting_for_answer"
            self._say("waiting", f"Waiting for your answer: {e.stage}")
        elif kind is EventKind.MILESTONE and e.status == "failed":
            stage.status, stage.ended = "failed", e.ts
        elif kind is EventKind.STAGE_COMPLETED:
            stage.status, stage.ended, stage.message = "completed", e.ts, e.message
            if e.warning and e.warning not in self.warnings:
                self.warnings.append(e.warning)
            for index, reasons in e.gated.items():
                if (barred := self.candidate(index)) is not None:
                    barred.status, barred.cause = "gated", reasons
            self._flagged(e)
        elif kind is EventKind.STAGE_FAILED:
            stage.status, stage.ended, stage.message = "failed", e.ts, e.error

    def _flagged(self, e: ProgressEvent) -> None:
        """Flagged candidates (their rows say why) and a flagged revision (-1)."""
        for index, reasons in e.flagged.items():
            if (row := self.candidate(index)) is not None:
                row.flag = reasons
            said = f"{'revision' if index < 0 else f'candidate #{index}'}: {reasons}"
            if said not in self.flags:
                self.flags.append(said)

    def _quota(self, e: ProgressEvent, stage: StageRow) -> None:
        """A call of the stage waits for its provider's quota (status "waiting"), or got
        it after such a wait ("running"): not a failure, the cluster is busy."""
        waiting = e.status == "waiting"
        index = e.key.removeprefix(ITEM_KEY)
        row = self.candidate(int(index)) if e.key.startswith(ITEM_KEY) and index.isdigit() else None
        if row is not None and row.status in UNDER_WAY:
            said = e.message.removeprefix(f"{e.key}: ")
            row.status = QUOTA if waiting else "running"
            row.cause = said if waiting else ""
            row.started = row.started or e.ts or None
        if stage.status not in UNDER_WAY:
            return
        fanned = self.candidates if e.stage == FAN_OUT else []
        others = [c for c in fanned if c.status == QUOTA and c is not row]
        if not waiting and others:  # another candidate of the stage still waits
            stage.status, stage.message = QUOTA, f"{ITEM_KEY}{others[0].index}: {others[0].cause}"
        else:
            stage.status = QUOTA if waiting else "running"
            stage.message = e.message
        if stage.status == QUOTA:
            self._say("running", f"{e.stage}: {stage.message}")
        else:
            self._say("running", f"Running: {e.stage}")

    def _say(self, status: str, text: str) -> None:
        if not self.ended_job:
            self.status, self.status_text = status, text

    def _candidate_percent(self, e: ProgressEvent) -> float:
        """Finer than the stream's milestones: every finished candidate moves the bar."""
        done, _, total = e.parallel_progress.partition(" ")[0].partition("/")
        if not (done.isdigit() and total.isdigit() and int(total)):
            return 0.0
        start, end = self.fan_out_span
        return start + (end - start) * int(done) / int(total)

    def _candidate(self, e: ProgressEvent, index: int) -> None:
        self.percent = max(self.percent, self._candidate_percent(e))
        row = self.candidate(index)
        if row is None:
            row = CandidateRow(index=index, variant=e.variant)
            self.candidates.append(row)
        row.model, row.ended, row.duration_s = e.model or row.model, e.ts, e.duration_s
        if e.duration_s is not None:
            row.started = e.ts - e.duration_s
        if e.status == "late":  # stopped by the straggler policy: not a failure
            row.status, row.cause, row.same_as = "late", LATE_CAUSE, None
            return
        row.status = "failed" if e.status == "failed" else "succeeded"
        row.cause = e.error if row.status == "failed" else ""
        # One cause, said once: a missing key is not repeated for every candidate.
        same = [c.index for c in self.candidates if c is not row and row.cause == c.cause]
        row.same_as = same[0] if row.cause and same else None

    def _finished(self, e: ProgressEvent) -> None:
        self.status, self.ended, self.error = e.status or "failed", e.ts or None, e.error
        said = f": {e.error}" if e.error else (f" — {e.message}" if e.message else "")
        self.status_text = f"Job {self.status}{said}"
        if self.status == "succeeded":
            self.percent = 100.0
