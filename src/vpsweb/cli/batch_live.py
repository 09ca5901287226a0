"""What `vpsweb batch` and `vpsweb batch watch` show while a batch runs.

One model of the batch (``vpsweb.view.batch_view.BatchView``) drives three displays:
on a terminal one live display (rich), redrawn a few times a second: a bar that never
moves back, the counts, the spend, elapsed and ETA, the poems running now with their
stage, and each failure with its cause printed once above it; in a pipe or a CI log
plain lines, one per poem that ends and a progress line every few seconds at most;
with ``--json`` one JSON object per line (each event, progress every few seconds, and
the summary at the end).

Following costs O(1) round trips per refresh whatever the batch's size: the follower
reads ``Batch.progress()`` (one pipeline) on a thread of its own, as often as the main
thread's ``Batch.events()`` polls (``follow_every_s``), and the stage of at most
``SHOWN`` running jobs (a read each, once a second). The main thread is the one a
Ctrl-C interrupts, so the caller can cancel the batch at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from vpsweb.client.batching import follow_every_s
from vpsweb.domain.batch import BatchEvent, BatchProgress
from vpsweb.errors import VpswebError
from vpsweb.view.batch_view import BatchView, EndRow, duration

STAGE_EVERY_S = 1.0  # the shown running jobs' stages
PLAIN_EVERY_S = 5.0  # a plain or JSON progress line, at most this often
SHOWN = 4  # running poems listed by the live display

_COLOR = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}


class Source(Protocol):
    """What a display follows: ``vpsweb.client.sync.Batch``, and the stage of a job."""

    def progress(self) -> BatchProgress: ...
    def events(self, timeout: float | None = None) -> Iterator[BatchEvent]: ...


class Display(Protocol):
    view: BatchView
    lock: threading.Lock

    def ended(self, row: EndRow) -> None: ...
    def tick(self, now: float) -> None: ...


class LiveDisplay:
    """The terminal display, redrawn by rich's own thread from the model."""

    def __init__(self, view: BatchView, console: Console) -> None:
        self.view, self.lock = view, threading.Lock()
        self.console = console
        self.live = Live(
            get_renderable=self.render, console=console, refresh_per_second=4, transient=False
        )

    def ended(self, row: EndRow) -> None:
        if row.status == "failed":  # above the live area, once
            self.live.console.print(Text(row.line(), style="red", overflow="fold"))

    def tick(self, now: float) -> None:
        pass  # rich redraws on its own

    def _head(self, v: BatchView, now: float) -> Table:
        head = Table.grid(padding=(0, 1), expand=True)
        head.add_column(no_wrap=True)
        head.add_column(ratio=1)
        head.add_column(no_wrap=True, justify="right")
        head.add_row(
            f"batch {v.batch_id}",
            ProgressBar(total=max(v.total, 1), completed=v.finished),
            f"{v.finished}/{v.total} {v.percent:5.1f}%",
        )
        return head

    def _counts(self, v: BatchView, now: float) -> Text:
        c = v.counts
        text = Text(overflow="fold")
        for status, n in (("succeeded", c.succeeded), ("failed", c.failed)):
            text.append(f"{n} {status}", style=_COLOR[status] if n else "")
            text.append(", ")
        text.append(f"{c.cancelled} cancelled, {c.running} running, {c.queued} queued")
        text.append(f"\ncost {v.spend()}  elapsed {duration(v.elapsed(now))}")
        text.append(f"  ETA {duration(v.eta(now))}")
        return text

    def _running(self, v: BatchView, now: float) -> list[RenderableType]:
        rows = Table.grid(padding=(0, 1), expand=True)
        rows.add_column(width=1)
        rows.add_column(ratio=2, no_wrap=True, overflow="ellipsis")
        rows.add_column(ratio=2, no_wrap=True, overflow="ellipsis", style="dim")
        rows.add_column(justify="right", no_wrap=True, width=7)
        for row in v.running[:SHOWN]:
            since = duration(now - row.since) if row.since else ""
            rows.add_row(
                Spinner("dots", style="cyan"),
                row.name,
                "" if row.stage is None else (row.stage or "waiting to start"),
                since,
            )
        more = len(v.running) - SHOWN
        return [rows, *([Text(f"  and {more} more running", style="dim")] if more > 0 else [])]

    def render(self) -> RenderableType:
        now = time.time()
        with self.lock:
            v = self.view
            return Group(self._head(v, now), self._counts(v, now), *self._running(v, now))


class PlainDisplay:
    """One line per poem that ended, and the batch's line every few seconds: nothing is
    redrawn, so a log reads top to bottom."""

    def __init__(self, view: BatchView, out: TextIO) -> None:
        self.view, self.lock, self.out = view, threading.Lock(), out
        self._said_at = 0.0
        self._said = ""

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def ended(self, row: EndRow) -> None:
        v = self.view  # numbered by the ends told, one more each line
        self._write(f"[{len(v.ended):>{len(str(v.total))}}/{v.total}] {row.line()}")

    def tick(self, now: float) -> None:
        said = self.view.counts_text()
        if now - self._said_at < PLAIN_EVERY_S or said == self._said:
            return
        self._said_at, self._said = now, said
        self._write(f"progress: {self.view.line(now)}")


class JsonDisplay:
    """One JSON object per line: each poem's start and end, progress every few seconds."""

    def __init__(self, view: BatchView, out: TextIO) -> None:
        self.view, self.lock, self.out = view, threading.Lock(), out
        self._said_at = 0.0
        self._said: dict[str, Any] = {}

    def write(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def event(self, e: BatchEvent) -> None:
        self.write({"event": e.kind, **e.model_dump(mode="json", exclude={"kind"})})

    def ended(self, row: EndRow) -> None:
        pass  # said by ``event``

    def tick(self, now: float) -> None:
        figures = self.view.model_dump(mode="json", exclude={"running", "failures", "read_at"})
        if now - self._said_at < PLAIN_EVERY_S or figures == self._said:
            return
        self._said_at, self._said = now, figures
        self.write({"event": "progress", **figures})


class _Ticker(threading.Thread):
    """Reads the batch's progress (and the shown running jobs' stages) every
    ``every`` seconds and hands it to the display, until stopped."""

    def __init__(
        self,
        source: Source,
        display: Display,
        stage_of: Callable[[str], str] | None,
        every: float,
    ) -> None:
        super().__init__(name="vpsweb-batch-follower", daemon=True)
        self.source, self.display, self.stage_of, self.every = source, display, stage_of, every
        self.stopping = threading.Event()
        self._stages_at = 0.0

    def read(self) -> None:
        progress = self.source.progress()
        with self.display.lock:
            self.display.view.apply_progress(progress)
            shown = [r.job_id for r in self.display.view.running[:SHOWN]]
            unread = self.display.view.unread(SHOWN)
        now = time.time()
        if shown and now - self._stages_at >= STAGE_EVERY_S:
            self._stages_at = now
            unread = shown
        if unread and self.stage_of is not None:  # at most SHOWN reads
            stages = {job_id: self.stage_of(job_id) for job_id in unread}
            with self.display.lock:
                self.display.view.set_stages(stages)
        self.display.tick(now)

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            # A store briefly away: the next read tries again (events() waits for it).
            with contextlib.suppress(VpswebError, OSError, ConnectionError):
                self.read()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


def follow_batch(
    source: Source,
    display: Display,
    stage_of: Callable[[str], str],
    *,
    timeout: float | None = None,
) -> None:
    """Show the batch until every poem's job has ended (TimeoutError after ``timeout``
    seconds). A Ctrl-C (KeyboardInterrupt) leaves at once, the display's last frame
    kept; the caller decides what it means for the batch."""
    live = isinstance(display, LiveDisplay)  # the only one that shows the running jobs
    # Read as often as events() does (every 0.5 s, less often for a big batch: each read
    # packs a command per member); rich redraws 4 times a second in between, the clocks
    # ticking from the last read.
    every = follow_every_s(display.view.total)
    ticker = _Ticker(source, display, stage_of if live else None, every)
    with display.live if isinstance(display, LiveDisplay) else contextlib.nullcontext():
        ticker.start()
        try:
            for event in source.events(timeout=timeout):
                with display.lock:
                    row = display.view.apply_event(event)
                if isinstance(display, JsonDisplay):
                    display.event(event)
                if row is not None:
                    display.ended(row)
        finally:
            ticker.stop()
        final = source.progress()
        with display.lock:
            display.view.apply_progress(final)
        if isinstance(display, LiveDisplay):
            display.live.refresh()


def display_for(view: BatchView, out: TextIO, *, json_lines: bool) -> Display:
    """JSON lines with ``json_lines``, else live on a terminal, else plain lines."""
    if json_lines:
        return JsonDisplay(view, out)
    if out.isatty():
        return LiveDisplay(view, Console(file=out))
    return PlainDisplay(view, out)
