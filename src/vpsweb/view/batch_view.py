"""A batch as every display draws it: one bar, the counts, the spend, the running poems
and each failure with its cause.

``BatchView.of(record)`` starts with every poem queued; ``apply_progress`` folds in a
``Batch.progress()`` read (one round trip, whatever the batch's size) and
``apply_event`` a ``Batch.events()`` event. The bar never moves back within one follow
(finished poems stay finished; a follower of a resumed batch starts a new view), and
each failure is kept once, in the order it happened, so that a display prints it once.
Pure: no I/O.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from vpsweb.domain.batch import BatchCounts, BatchEvent, BatchProgress, BatchRecord
from vpsweb.view.marks import SYMBOL

# How an ended poem is marked, as a job's candidates are: a symbol and words.
END_MARK = {"succeeded": SYMBOL["succeeded"], "failed": SYMBOL["failed"], "cancelled": "⊘"}
END_WORD = {
    "job_succeeded": "succeeded",
    "job_failed": "failed",
    "job_cancelled": "cancelled",
}


def duration(seconds: float | None) -> str:
    """``0:07``, ``12:30``, ``1:02:03``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RunningRow(BaseModel):
    """A poem whose job runs now: its name, its job's stage (as the job's last event
    said) and when this follower saw it start."""

    name: str
    job_id: str
    stage: str | None = None  # None: not read yet; "": no stage started yet
    since: float | None = None


class EndRow(BaseModel):
    """A poem whose job ended while followed: how, and why (a failure's cause)."""

    name: str
    where: str
    job_id: str
    status: str  # succeeded, failed, cancelled
    reused: bool = False
    cause: str = ""
    same_as: str = ""  # an earlier failure with the same cause (a budget reached, a key)

    @property
    def mark(self) -> str:
        return END_MARK.get(self.status, SYMBOL["failed"])

    def line(self) -> str:
        """``✓ li-bai succeeded``, ``✗ du-fu (poems.csv row 4) failed: Editor Review: ...``"""
        where = f" ({self.where})" if self.status != "succeeded" else ""
        reused = " (translated before: reused)" if self.reused else ""
        cause = f": {self.cause}" if self.cause else ""
        if self.same_as:  # one cause, said once: not 300 times for a budget reached
            cause = f": same cause as {self.same_as}"
        return f"{self.mark} {self.name}{where} {self.status}{reused}{cause}"


class BatchView(BaseModel):
    batch_id: str
    name: str = ""
    total: int = 0
    counts: BatchCounts = Field(default_factory=BatchCounts)
    percent: float = 0.0  # finished / total: never backwards
    calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    currency: str = ""
    budget: float | None = None
    reused: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    read_at: float = 0.0  # when the figures above were read (epoch seconds)
    ended: set[str] = Field(default_factory=set, exclude=True)  # jobs seen to end
    running: list[RunningRow] = Field(default_factory=list)  # oldest first
    failures: list[EndRow] = Field(default_factory=list)  # each once, as they happened
    names: dict[str, tuple[str, str]] = Field(default_factory=dict, exclude=True)  # id: name, where

    @classmethod
    def of(cls, record: BatchRecord) -> BatchView:
        view = cls(batch_id=record.batch_id, name=record.name)
        view.apply_record(record)
        view.counts = BatchCounts(queued=view.total, total=view.total)
        return view

    def apply_record(self, record: BatchRecord) -> None:
        """The members as the record has them now (a resume gives some new jobs)."""
        self.total = len(record.entries)
        self.names = {m.job_id: (m.name, m.where) for m in record.entries}

    @property
    def finished(self) -> int:
        """Poems finished: as the last read counted them, or as the events since said
        (whichever is further: the two are read apart)."""
        return max(self.counts.finished, len(self.ended))

    @property
    def done(self) -> bool:
        return self.total > 0 and self.finished >= self.total

    def apply_progress(self, p: BatchProgress, now: float | None = None) -> None:
        """Fold in one read of the batch: the counts only grow towards the end."""
        self.counts, self.calls, self.tokens = p.counts, p.calls, p.tokens
        self.total = p.counts.total or self.total
        self.percent = max(self.percent, min(p.percent, 100.0))
        self.cost, self.currency, self.budget = p.cost, p.currency, p.budget
        self.reused, self.elapsed_s, self.eta_s = p.reused, p.elapsed_s, p.eta_s
        self.read_at = time.time() if now is None else now
        rows = {r.job_id: r for r in self.running}
        fresh = [
            rows.get(job_id)
            or RunningRow(name=self.names.get(job_id, (job_id, ""))[0], job_id=job_id)
            for job_id in p.running
            if job_id not in self.ended  # read before its end was told
        ]
        self.running = sorted(fresh, key=lambda r: (r.since is None, r.since or 0.0))

    def apply_event(self, e: BatchEvent, now: float | None = None) -> EndRow | None:
        """Fold in one event; the row of a poem that ended (a display says it once)."""
        now = time.time() if now is None else now
        if e.kind == "job_started":
            known = next((r for r in self.running if r.job_id == e.job_id), None)
            if known is None:
                self.running.append(RunningRow(name=e.name, job_id=e.job_id, since=now))
            else:
                known.since = known.since or now
            return None
        self.running = [r for r in self.running if r.job_id != e.job_id]
        self.ended.add(e.job_id)
        if self.total:
            self.percent = max(self.percent, min(100.0, round(self.finished / self.total * 100, 2)))
        ended = EndRow(
            name=e.name,
            where=e.where,
            job_id=e.job_id,
            status=END_WORD[e.kind],
            reused=e.reused,
            cause=" ".join((e.cause or "").split()),
        )
        if ended.status == "failed":
            earlier = next(
                (f for f in self.failures if ended.cause and f.cause == ended.cause), None
            )
            ended.same_as = earlier.name if earlier is not None else ""
            self.failures.append(ended)
        return ended

    def unread(self, shown: int) -> list[str]:
        """The first ``shown`` running jobs whose stage was never read."""
        return [r.job_id for r in self.running[:shown] if r.stage is None]

    def set_stages(self, stages: dict[str, str]) -> None:
        """The stage each of some running jobs is in (read by the follower)."""
        for row in self.running:
            row.stage = stages.get(row.job_id, row.stage)

    def eta(self, now: float | None = None) -> float | None:
        """The ETA of the last read, counted down since (between reads)."""
        if self.eta_s is None:
            return None
        now = time.time() if now is None else now
        return max(0.0, self.eta_s - max(0.0, now - self.read_at)) if self.read_at else self.eta_s

    def elapsed(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return self.elapsed_s + (max(0.0, now - self.read_at) if self.read_at else 0.0)

    def spend(self) -> str:
        """``0.0123 CNY`` (``of budget 1 CNY``)."""
        unit = f" {self.currency}" if self.currency else ""
        said = f"{self.cost:.4g}{unit}"
        return said + (f" of budget {self.budget:g}{unit}" if self.budget is not None else "")

    def counts_text(self) -> str:
        """``10 succeeded, 2 failed, 0 cancelled, 4 running, 84 queued``."""
        c = self.counts
        parts = [f"{c.succeeded} succeeded", f"{c.failed} failed", f"{c.cancelled} cancelled"]
        parts += [f"{c.running} running", f"{c.queued} queued"]
        parts += [f"{c.expired} expired"] if c.expired else []
        return ", ".join(parts)

    def line(self, now: float | None = None) -> str:
        """The batch in one line, for logs: ``12/100 (12.0%) finished: ...; cost ...;
        elapsed 0:20, ETA 2:10``."""
        return (
            f"{self.finished}/{self.total} ({self.percent:.1f}%) finished: {self.counts_text()}; "
            f"cost {self.spend()}; elapsed {duration(self.elapsed(now))}, "
            f"ETA {duration(self.eta(now))}"
        )
