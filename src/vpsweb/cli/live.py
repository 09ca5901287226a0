"""What `vpsweb translate` and `vpsweb watch` show while a job runs.

One model of the job (``vpsweb.view.JobView``, the web page's too), built from its
events, drives two displays: on a terminal a live view (rich: width-aware, a
spinner while calls are in flight, elapsed times that keep ticking, a bar that
never moves back, one row per candidate); elsewhere (CI logs, pipes) plain lines,
one per event. Both say a candidate's status as the model labels it (symbol and
words: succeeded, late, gated, failed, waiting for quota), never by color alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.errors import one_line
from vpsweb.stages.table import STAGES
from vpsweb.view import CandidateRow, JobView
from vpsweb.view.marks import FLAG, SYMBOL, candidate_label, clock

JobState = JobView  # its name here before the web page shared it

_COLOR = {
    "completed": "green",
    "succeeded": "green",
    "failed": "red",
    "late": "yellow",
    "gated": "magenta",
    "waiting_for_answer": "cyan",
    "waiting_for_quota": "blue",
}
QUOTA = "waiting_for_quota"


def _note(row: CandidateRow) -> str:
    """A candidate's label, a repeated cause said once ("same cause as #1")."""
    if row.status == "failed" and row.same_as is not None:
        return candidate_label("failed", f"same cause as #{row.same_as}")
    return row.label


class LiveView:
    """The terminal display: re-rendered a few times a second by rich's own thread."""

    def __init__(self, state: JobView, console: Console) -> None:
        self.state = state
        self.opened = time.time()  # the job's start until its events say it
        self.live = Live(
            get_renderable=self.render, console=console, refresh_per_second=6, transient=False
        )

    def _mark(self, status: str) -> RenderableType:
        if status == "running":
            return Spinner("dots", style="cyan")
        return Text(SYMBOL.get(status, "·"), style=_COLOR.get(status, "dim"))

    def _rows(self, now: float) -> Table:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=1)
        table.add_column(ratio=3, no_wrap=True, overflow="ellipsis")
        table.add_column(ratio=2, no_wrap=True, overflow="ellipsis", style="dim")
        table.add_column(justify="right", no_wrap=True, width=6)
        for row in self.state.stages:
            # A wait for quota is said where the model goes: "candidate-1: waiting for ..."
            model = Text(row.message, style=_COLOR[QUOTA]) if row.status == QUOTA else row.model
            table.add_row(self._mark(row.status), row.name, model, clock(row.elapsed(now)))
            for cand in self.state.candidates if row.name == STAGES[0].display_name else ():
                ended = cand.status in ("late", "gated", "failed", QUOTA)
                note = Text(_note(cand), style=_COLOR[cand.status]) if ended else cand.model
                table.add_row(
                    self._mark(cand.status),
                    f"  #{cand.index} {cand.variant}",
                    note,
                    clock(cand.elapsed(now)),
                )
        return table

    def _causes(self) -> list[RenderableType]:
        """Each distinct cause of a failed or gated candidate in full (the rows have no
        room): "#0, #2: ✗ failed: no API key ..."."""
        by_cause: dict[str, list[str]] = {}
        for row in self.state.candidates:
            if row.status in ("failed", "gated") and row.cause:
                by_cause.setdefault(row.label, []).append(f"#{row.index}")
        return [
            Text(f"{', '.join(who)}: {label}", style="red", overflow="fold")
            for label, who in by_cause.items()
        ]

    def render(self) -> RenderableType:
        s, now = self.state, time.time()
        elapsed = (s.ended or now) - (s.started or self.opened)
        head = Table.grid(padding=(0, 1), expand=True)
        head.add_column(no_wrap=True)
        head.add_column(ratio=1)
        head.add_column(no_wrap=True, justify="right")
        head.add_row(
            f"job {s.job_id}",
            ProgressBar(total=100, completed=s.percent),
            f"{s.percent:5.1f}%  {clock(elapsed)}",
        )
        parts: list[RenderableType] = [head, self._rows(now), *self._causes()]
        parts += [Text(f"! {w}", style="yellow") for w in [*s.warnings, *s.notices]]
        parts += [Text(f"{FLAG} {f}", style="yellow", overflow="fold") for f in s.flags]
        return Group(*parts)


class PlainView:
    """One line per event, for logs and pipes: nothing is redrawn."""

    def __init__(self, state: JobView, out: TextIO) -> None:
        self.state = state
        self.out = out
        self.opened = time.time()
        self._quota_said: dict[str, str] = {}  # step key -> its last quota line

    def _quota(self, e: ProgressEvent) -> str | None:
        """A wait for quota and its end, each said once (a repeat is left out)."""
        if self._quota_said.get(e.key) == e.message:
            return None
        self._quota_said[e.key] = e.message
        mark = SYMBOL[QUOTA] if e.status == "waiting" else SYMBOL["running"]
        return f"  {mark} {e.message}"

    def _candidate(self, e: ProgressEvent) -> str:
        row = self.state.candidate(e.index) if e.index is not None else None
        took = f" in {clock(e.duration_s)}" if e.duration_s is not None else ""
        what = f"candidate {e.index} ({e.variant}, {e.model})"
        if row is None:
            return f"  {what} {e.status}{took}"
        why = _note(row).partition(row.status)[2]  # ": cause", " (stopped: ...)" or ""
        return f"  {SYMBOL[row.status]} {what} {row.status}{took}{why}"

    def _completed(self, e: ProgressEvent) -> str:
        row = self.state.stage(e.stage)
        took = clock(row.elapsed(time.time())) if row else ""
        said = "" if e.message.startswith(f"{e.stage} completed") else f": {e.message}"
        lines = [f"{e.stage} completed in {took}{said}"]
        lines += [f"  warning: {e.warning}"] if e.warning else []
        for index in e.gated:  # kept from the judge by a check: said as the model says it
            if (cand := self.state.candidate(index)) is not None:
                lines.append(f"  {SYMBOL['gated']} candidate {index} {cand.label[2:]}")
        for index, reasons in e.flagged.items():  # judged all the same, with a finding
            who = "the revision" if index < 0 else f"candidate {index}"
            lines.append(f"  {FLAG} {who} flagged: {reasons}")
        return "\n".join(lines)

    def line(self, e: ProgressEvent) -> str | None:
        if e.event is EventKind.WARNING:
            return f"{'resolved' if e.status == 'resolved' else 'warning'}: {e.message}"
        if e.event is EventKind.STAGE_STARTED:
            return f"{e.stage} started ({e.model})"
        if e.event is EventKind.CANDIDATE_FINISHED:
            return self._candidate(e)
        if e.event is EventKind.MILESTONE:
            return f"  {e.message}"
        if e.event is EventKind.WAITING_FOR_QUOTA:
            return self._quota(e)
        if e.event is EventKind.STAGE_COMPLETED:
            return self._completed(e)
        if e.event is EventKind.STAGE_FAILED:
            return f"{e.stage} failed"  # the cause is said once, by the command, at the end
        if e.event is EventKind.JOB_FINISHED:
            s = self.state
            took = clock((s.ended or time.time()) - (s.started or self.opened))
            where = f" in {e.stage}" if e.status == "failed" and e.stage else ""
            return f"job {e.status}{where} after {took}"
        return None

    def show(self, e: ProgressEvent) -> None:
        text = self.line(e)
        if text is not None:
            self.out.write(f"[{self.state.percent:5.1f}%] {text}\n")
            self.out.flush()


def why_failed(state: JobView, stage: str, cause: str) -> str:
    """A failed job's cause (as one line: it ends a one-line error), unless the display
    already listed it candidate by candidate."""
    if stage == STAGES[0].display_name and state.causes_shown():
        return "no candidate succeeded (the cause of each is shown above)"
    return one_line(cause)


def follow(
    events: Iterable[ProgressEvent], state: JobView, out: TextIO, *, live: bool | None = None
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
