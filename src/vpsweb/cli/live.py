"""What `vpsweb translate` and `vpsweb watch` show while a job runs.

One model of the job (``JobState``), built from its events, drives two displays:
on a terminal a live view (rich: width-aware, a spinner while calls are in flight,
elapsed times that keep ticking, a bar that never moves back, one row per
candidate); elsewhere (CI logs, pipes) plain lines, one per event. Times come from
the events' own timestamps, so a job followed late (replayed) shows its real ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.errors import one_line
from vpsweb.stages.table import STAGES, stage_bounds


@dataclass
class Row:
    """A stage or a candidate: what it is, how it stands, when it started and ended."""

    label: str
    model: str = ""
    status: str = "waiting"
    started: float | None = None  # epoch seconds, from the events
    ended: float | None = None
    note: str = ""
    cause: str = ""  # a failed candidate's own error

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started


@dataclass
class JobState:
    """A job as its events describe it so far."""

    job_id: str
    stages: dict[str, Row] = field(default_factory=dict)
    candidates: dict[int, Row] = field(default_factory=dict)
    percent: float = 0.0
    started: float = field(default_factory=time.time)
    ended: float | None = None
    outcome: str = ""
    warnings: list[str] = field(default_factory=list)
    fan_out_span: tuple[float, float] = (0.0, 0.0)  # percent at the fan-out's start, end

    @classmethod
    def of(cls, job_id: str, plan: JobPlan | None) -> JobState:
        state = cls(job_id=job_id, stages={s.display_name: Row(s.display_name) for s in STAGES})
        for c in plan.candidates if plan else []:
            state.candidates[c.index] = Row(f"#{c.index} {c.variant}", model=c.call.model)
        if plan is not None:
            state.fan_out_span = stage_bounds(plan.progress_weights, STAGES[0].name)
        return state

    def _candidate_percent(self, e: ProgressEvent) -> float:
        """Finer than the stream's milestones: every finished candidate moves the bar."""
        done, _, total = e.parallel_progress.partition(" ")[0].partition("/")
        if not (done.isdigit() and total.isdigit() and int(total)):
            return 0.0
        start, end = self.fan_out_span
        return start + (end - start) * int(done) / int(total)

    def _candidate(self, e: ProgressEvent, index: int) -> None:
        self.percent = max(self.percent, self._candidate_percent(e))
        row = self.candidates.setdefault(index, Row(f"#{index} {e.variant}"))
        row.status, row.model, row.ended = e.status, e.model or row.model, e.ts
        row.started = e.ts - e.duration_s if e.duration_s is not None else row.started
        if e.status == "late":  # stopped by the straggler policy: not a failure to explain
            row.cause, row.note = "", "late: stopped, the others sufficed"
            return
        # One cause, said once: a missing key is not repeated for every candidate.
        same = [i for i, c in self.candidates.items() if i != index and c.cause == e.error]
        row.cause = e.error
        row.note = f"same cause as #{same[0]}" if e.error and same else e.error

    def causes_shown(self) -> bool:
        """Whether every candidate ended with its cause on screen (then a job that failed
        for want of candidates need not repeat them)."""
        rows = self.candidates.values()
        return bool(rows) and all(r.ended is not None and r.status == "failed" for r in rows)

    def apply(self, e: ProgressEvent) -> None:
        self.percent = max(self.percent, e.progress_percent)  # never backwards
        if e.event is EventKind.WARNING:
            if e.status == "resolved":
                self.warnings = [w for w in self.warnings if w != e.message]
            elif e.message not in self.warnings:
                self.warnings.append(e.message)
            return
        if e.event is EventKind.JOB_QUEUED:
            self.started = e.ts or self.started
        stage = self.stages.get(e.stage)  # a row per stage of the table, nothing else
        if e.event is EventKind.STAGE_STARTED and stage is not None:
            stage.status, stage.model, stage.started = "running", e.model, e.ts
            for row in self.candidates.values() if e.stage == STAGES[0].display_name else ():
                row.status, row.started = "running", e.ts
        elif e.event is EventKind.CANDIDATE_FINISHED and e.index is not None:
            self._candidate(e, e.index)
        elif e.event is EventKind.MILESTONE and stage is not None and e.status == "failed":
            stage.status, stage.ended = "failed", e.ts
        elif e.event is EventKind.STAGE_COMPLETED and stage is not None:
            stage.status, stage.ended, stage.note = "completed", e.ts, e.message
            # A stage that fell back (no judge's verdict): kept on screen to the end.
            if e.warning and e.warning not in self.warnings:
                self.warnings.append(e.warning)
        elif e.event is EventKind.STAGE_FAILED and stage is not None:
            stage.status, stage.ended, stage.note = "failed", e.ts, e.error
        elif e.event is EventKind.JOB_FINISHED:
            self.outcome, self.ended = e.status, e.ts or time.time()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{seconds:.1f}s"


_MARK = {
    "completed": "[green]✓[/]",
    "succeeded": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "late": "[yellow]⏱[/]",
}


class LiveView:
    """The terminal display: re-rendered a few times a second by rich's own thread."""

    def __init__(self, state: JobState, console: Console) -> None:
        self.state = state
        self.live = Live(
            get_renderable=self.render, console=console, refresh_per_second=6, transient=False
        )

    def _mark(self, status: str) -> RenderableType:
        if status == "running":
            return Spinner("dots", style="cyan")
        return Text.from_markup(_MARK.get(status, "[dim]·[/]"))

    def _rows(self, now: float) -> Table:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=1)
        table.add_column(ratio=3, no_wrap=True, overflow="ellipsis")
        table.add_column(ratio=2, no_wrap=True, overflow="ellipsis", style="dim")
        table.add_column(justify="right", no_wrap=True, width=6)
        for name, row in self.state.stages.items():
            table.add_row(self._mark(row.status), name, row.model, _clock(row.elapsed(now)))
            if name == STAGES[0].display_name:
                for cand in self.state.candidates.values():
                    color = "yellow" if cand.status == "late" else "red"
                    note = f"[{color}]{cand.note}[/]" if cand.note else cand.model
                    table.add_row(
                        self._mark(cand.status),
                        f"  {cand.label}",
                        Text.from_markup(note),
                        _clock(cand.elapsed(now)),
                    )
        return table

    def _causes(self) -> list[RenderableType]:
        """Each distinct cause of a failed candidate in full (the rows have no room)."""
        by_cause: dict[str, list[str]] = {}
        for index, row in self.state.candidates.items():
            if row.cause:
                by_cause.setdefault(row.cause, []).append(f"#{index}")
        return [
            Text(f"{', '.join(who)}: {cause}", style="red", overflow="fold")
            for cause, who in by_cause.items()
        ]

    def render(self) -> RenderableType:
        s, now = self.state, time.time()
        elapsed = (s.ended or now) - s.started
        head = Table.grid(padding=(0, 1), expand=True)
        head.add_column(no_wrap=True)
        head.add_column(ratio=1)
        head.add_column(no_wrap=True, justify="right")
        head.add_row(
            f"job {s.job_id}",
            ProgressBar(total=100, completed=s.percent),
            f"{s.percent:5.1f}%  {_clock(elapsed)}",
        )
        parts: list[RenderableType] = [head, self._rows(now), *self._causes()]
        parts += [Text(f"! {w}", style="yellow") for w in s.warnings]
        return Group(*parts)


class PlainView:
    """One line per event, for logs and pipes: nothing is redrawn."""

    def __init__(self, state: JobState, out: TextIO) -> None:
        self.state = state
        self.out = out

    def line(self, e: ProgressEvent) -> str | None:
        if e.event is EventKind.WARNING:
            return f"{'resolved' if e.status == 'resolved' else 'warning'}: {e.message}"
        if e.event is EventKind.STAGE_STARTED:
            return f"{e.stage} started ({e.model})"
        if e.event is EventKind.CANDIDATE_FINISHED:
            took = f" in {_clock(e.duration_s)}" if e.duration_s is not None else ""
            row = self.state.candidates.get(e.index) if e.index is not None else None
            why = f": {row.note}" if row and row.note else ""
            return f"  candidate {e.index} ({e.variant}, {e.model}) {e.status}{took}{why}"
        if e.event is EventKind.MILESTONE:
            return f"  {e.message}"
        if e.event is EventKind.STAGE_COMPLETED:
            row = self.state.stages.get(e.stage)
            took = _clock(row.elapsed(time.time())) if row else ""
            said = "" if e.message.startswith(f"{e.stage} completed") else f": {e.message}"
            warned = f"\n  warning: {e.warning}" if e.warning else ""
            return f"{e.stage} completed in {took}{said}{warned}"
        if e.event is EventKind.STAGE_FAILED:
            return f"{e.stage} failed"  # the cause is said once, by the command, at the end
        if e.event is EventKind.JOB_FINISHED:
            took = _clock((self.state.ended or time.time()) - self.state.started)
            where = f" in {e.stage}" if e.status == "failed" and e.stage else ""
            return f"job {e.status}{where} after {took}"
        return None

    def show(self, e: ProgressEvent) -> None:
        text = self.line(e)
        if text is not None:
            self.out.write(f"[{self.state.percent:5.1f}%] {text}\n")
            self.out.flush()


def why_failed(state: JobState, stage: str, cause: str) -> str:
    """A failed job's cause (as one line: it ends a one-line error), unless the display
    already listed it candidate by candidate."""
    if stage == STAGES[0].display_name and state.causes_shown():
        return "no candidate succeeded (the cause of each is shown above)"
    return one_line(cause)


def follow(
    events: Iterable[ProgressEvent], state: JobState, out: TextIO, *, live: bool | None = None
) -> ProgressEvent | None:
    """Show every event until the job ends; the last event. ``live`` defaults to
    whether ``out`` is a terminal. The live view is stopped (its last frame kept)
    before an exception, Ctrl-C included, leaves."""
    last = None
    live = out.isatty() if live is None else live
    if not live:
        plain = PlainView(state, out)
        for event in events:
            state.apply(event)
            plain.show(event)
            last = event
        return last
    view = LiveView(state, Console(file=out))
    with view.live:
        for event in events:
            state.apply(event)
            last = event
        view.live.refresh()
    return last
