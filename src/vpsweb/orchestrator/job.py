"""One task's view of its job: the plan, the stored outputs it reads, its events.

It holds no step state (the step's lease and cancel check belong to
``orchestrator.step.StepRun``); ``run_step`` and ``finalize`` both read through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from vpsweb.domain.job_warnings import warning_text
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind, flagged_field, gated_field
from vpsweb.errors import Cancelled, JobGone, StoreUnavailable, one_line
from vpsweb.stages import runs
from vpsweb.stages.shared import Prior
from vpsweb.stages.table import STAGES, Stage, stage_bounds
from vpsweb.storage import Event, JobStatus, Storage
from vpsweb.storage.base import CandidateEnd

SAVE_PATIENCE_S = 300.0  # how long a paid output waits for an unreachable store


class JobRun:
    """A job as one task sees it (``read_status=False``: the caller reads the status
    itself, in its step's first batch)."""

    def __init__(self, storage: Storage, job_id: str, *, read_status: bool = True) -> None:
        self.jobs, self.progress, self.manual = storage.jobs, storage.progress, storage.manual
        status = self.jobs.status(job_id) if read_status else JobStatus.RUNNING
        plan = self.jobs.plan(job_id) if status is not None else None
        if status is None or plan is None:
            raise JobGone(f"job {job_id} is unknown or has expired")
        if status.terminal:
            raise Cancelled(f"job {job_id} already {status.value}")
        self.job_id = job_id
        self.plan: JobPlan = plan
        self.ttl = plan.retention_s

    def outputs(self, s: Stage) -> Any:
        """A stage's stored output (for a fan-out stage, every item; a missing item
        becomes its stage's "lost" record so the next stage can go on without it)."""
        return self.parse(s, self.jobs.load_steps(self.job_id, s.keys(self.plan)))

    def parse(self, s: Stage, raw: list[str | None]) -> Any:
        """A stage's outputs from their stored JSON (see ``outputs``)."""
        if not s.fan_out:
            if raw[0] is None:
                raise RuntimeError(f"job {self.job_id}: output of {s.name} is missing")
            return s.output.model_validate_json(raw[0])
        return [
            s.output.model_validate_json(r) if r is not None else runs.lost(s, self.plan, i, "lost")
            for i, r in enumerate(raw)
        ]

    def prior(self, names: tuple[str, ...], raw: list[str | None] | None = None) -> Prior:
        """The outputs of the stages ``names``: read now, or parsed from ``raw`` (their
        keys' stored JSON in order, as ``prior_keys`` lists them)."""
        by_name = {s.name: s for s in STAGES}
        if raw is None:
            return Prior({name: self.outputs(by_name[name]) for name in names})
        found, at = {}, 0
        for name in names:
            count = len(by_name[name].keys(self.plan))
            found[name] = self.parse(by_name[name], raw[at : at + count])
            at += count
        return Prior(found)

    def prior_keys(self, names: tuple[str, ...]) -> list[str]:
        by_name = {s.name: s for s in STAGES}
        return [k for name in names for k in by_name[name].keys(self.plan)]

    def stage_event(self, s: Stage, *, started: bool, message: str, output: object = None) -> None:
        """A stage's start (at its lower bound) or end (upper bound), once each."""
        once = f"{'start' if started else 'end'}:{s.name}"
        event = self.event_of(s, started=started, message=message, output=output)
        self.progress.emit(self.job_id, event, self.ttl, once=once)

    def event_of(self, s: Stage, *, started: bool, message: str, output: object = None) -> Event:
        """``output``: an end's; what it fell back on is said beside its summary (every
        follower shows a warning, not a plain completion), and who a check barred."""
        start, end = stage_bounds(self.plan.progress_weights, s.name)
        model = self.plan.call(s.name, 0 if s.fan_out else None).model
        kind = EventKind.STAGE_STARTED if started else EventKind.STAGE_COMPLETED
        fields = {
            "stage": s.display_name,
            "status": "running" if started else "completed",
            "model": model,
            "message": message,
        }
        extra = {
            "warning": warning_text(output),
            "gated": gated_field(output),
            "flagged": flagged_field(output),
        }
        fields.update({k: v for k, v in extra.items() if v})
        return Event(kind, start if started else end, fields)

    def candidate_end(self, s: Stage, index: int, output: BaseModel) -> CandidateEnd:
        """A candidate's end as the progress log counts it: outcome, and what a display
        shows of it (variant, model, time, cause)."""
        plan = self.plan
        metrics = getattr(output, "metrics", None)
        error = getattr(output, "error", None)
        details = {
            "variant": plan.candidates[index].variant,
            "model": plan.candidates[index].call.model,
            "duration_s": metrics.duration_s if metrics else None,
            "error": one_line(error.split(" (the answer began:")[0], 300) if error else None,
        }
        _, end = stage_bounds(plan.progress_weights, s.name)
        return CandidateEnd(
            index=index,
            ok=bool(getattr(output, "ok", True)),
            late=getattr(output, "status", "") == "late",
            n=plan.parallel_count,
            end_percent=end,
            stage=s.display_name,
            details=details,
            quorum=plan.straggler.quorum_count(plan.parallel_count),
            grace=plan.straggler.grace,
        )


def patiently(save: Callable[[], str]) -> str:
    """A paid output is stored before anything else can fail: keep trying while the
    store is unreachable."""
    give_up = time.monotonic() + SAVE_PATIENCE_S
    while True:
        try:
            return save()
        except StoreUnavailable:
            if time.monotonic() > give_up:
                raise
            time.sleep(2.0)
