"""What the CLI shows: a live progress bar, stage lines, status snapshots, results."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from vpsweb.output_files import format_cost
from vpsweb.progress import EventKind, ProgressEvent, ProgressSnapshot
from vpsweb.stages.table import TranslationOutput
from vpsweb.storage import JobRecord

BAR_WIDTH = 30
_STAGE_EVENTS = {EventKind.STAGE_STARTED, EventKind.STAGE_COMPLETED, EventKind.STAGE_FAILED}


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    filled = round(width * min(max(percent, 0.0), 100.0) / 100)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {percent:5.1f}%"


class ProgressView:
    """One bar that moves on milestones and stage changes, and a line per stage event.

    On a terminal the bar redraws in place under the stage lines; elsewhere (CI
    logs, pipes) every event is a plain line, so logs stay readable.
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.percent = 0.0

    def _line(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")

    def _redraw(self, note: str) -> None:
        if self.tty:
            self.out.write(f"\r\033[K{bar(self.percent)} {note}")
        self.out.flush()

    def show(self, event: ProgressEvent) -> None:
        self.percent = max(self.percent, event.progress_percent)
        if event.event in _STAGE_EVENTS:
            model = f" [{event.model}]" if event.model else ""
            tail = f": {event.error}" if event.error else ""
            self._line(f"  {event.stage:<24} {event.status:<10}{model}{tail}")
        elif event.event is EventKind.MILESTONE:
            self._line(
                f"  {event.stage:<24} {event.parallel_progress} "
                f"({event.successful} ok, {event.failed} failed)"
            )
        elif event.terminal:
            tail = f": {event.error}" if event.error else ""
            self._line(f"{bar(self.percent)} job {event.status}{tail}")
            return
        if not self.tty:
            self._line(bar(self.percent))
        self._redraw(event.stage)

    def follow(self, events: Iterable[ProgressEvent]) -> ProgressEvent | None:
        last = None
        for event in events:
            self.show(event)
            last = event
        return last


def print_status(record: JobRecord, snap: ProgressSnapshot, out: TextIO) -> None:
    p = record.plan
    out.write(
        f"job {record.job_id}: {record.status.value}\n"
        f"  {bar(snap.progress_percent)}  stage: {snap.stage or '-'} ({snap.status})\n"
        f"  mode {p.workflow_mode.value}, {p.parallel_count} candidate(s), "
        f"{p.request.source_lang} -> {p.request.target_lang}"
        f"{', offline' if p.offline else ''}\n"
    )
    if snap.parallel_progress:
        out.write(
            f"  candidates: {snap.parallel_progress} ({snap.successful} ok, {snap.failed} failed)\n"
        )
    if snap.message:
        out.write(f"  last: {snap.message}\n")
    if record.error:
        out.write(f"  error ({record.error_stage}): {record.error}\n")


def print_result(output: TranslationOutput, out: TextIO) -> None:
    ev = output.evaluation
    chosen = output.selected_candidate
    t = output.totals
    suggestions = output.editor_review.suggestions.strip().splitlines()
    summary = "\n".join(f"    {line}" for line in suggestions[:6])
    if len(suggestions) > 6:
        summary += f"\n    ... ({len(suggestions) - 6} more lines in the saved files)"
    failed = [c for c in output.candidates if not c.ok]
    out.write(
        f"\nChosen candidate: #{chosen.index} ({chosen.variant}), "
        f"method {ev.method}, of {len(output.candidates)}"
    )
    out.write(f" ({len(failed)} failed)\n" if failed else "\n")
    out.write(f"Rationale: {ev.rationale.strip()}\n")
    if len(ev.presented_order) > 1:
        # The judge numbered candidates in its shuffled order; show the mapping.
        seen = ", ".join(f"{pid}=#{idx}" for pid, idx in enumerate(ev.presented_order, 1))
        out.write(f"  (the judge saw them shuffled as {seen})\n")
    out.write("\n")
    out.write(f"Editor's suggestions:\n{summary}\n\n")
    title = output.revision.translated_title
    out.write(f"Final translation{f' — {title}' if title else ''}:\n\n")
    out.write(output.revision.translation.strip() + "\n\n")
    out.write(
        f"Totals: {t.llm_calls} LLM calls, {t.total_tokens} tokens "
        f"({t.prompt_tokens} prompt + {t.completion_tokens} completion), "
        f"cost {format_cost(t.cost)}, {t.duration_s:.1f} s\n"
    )
