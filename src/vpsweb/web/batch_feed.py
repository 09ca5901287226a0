"""One reader per batch, many pages: the batch page's live counts and rows.

A batch page follows the batch as a whole (``AsyncBatch.progress()``: the counts, cost
and ETA, one round trip whatever the batch's size) and each poem's row
(``AsyncBatch.events()``: each member's start and end, once). As for job pages
(vpsweb.web.feed), the first page of a batch starts one reader for every page of it,
and the reader stops when its last page leaves; pages wait on the event loop, not on
Redis. What the reader keeps is a state, not a log: a page gets the whole state when
it arrives (a reload, a second tab, a reconnect) and then only what changed, so a
500-poem batch that ran an hour is not replayed event by event.

The same limits as job pages, counted with them (``StreamCount``): streams per
process, per batch (``per_job``) and batches followed (``jobs``); beyond them
``StreamsFull``, answered 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from vpsweb.client.aio_batch import AsyncBatch
from vpsweb.client.batching import follow_every_s
from vpsweb.domain.batch import BatchEvent
from vpsweb.web.batch_views import (
    BatchRow,
    BatchSummary,
    apply_event,
    job_end,
    row_states,
    rows_of,
    summary_of,
)
from vpsweb.web.feed import FeedHub, Place

log = logging.getLogger("vpsweb.web")
PROGRESS_S = 1.0  # how often, at most, the reader reads the batch's progress


@dataclass
class _Feed:
    batch_id: str
    summary: BatchSummary | None = None
    summary_version: int = 0
    rows: list[BatchRow] = field(default_factory=list)
    row_versions: list[int] = field(default_factory=list)
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: list[BatchSubscription] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return self.batch_id

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def set_summary(self, summary: BatchSummary) -> None:
        if summary != self.summary:
            self.version += 1
            self.summary, self.summary_version = summary, self.version
            self.wake()

    def touch_row(self, index: int) -> None:
        self.version += 1
        self.row_versions[index] = self.version
        self.wake()

    def message(self, seen: int) -> str:
        """What changed since version ``seen`` (-1: everything), as the page's JSON."""
        rows = [r for r, v in zip(self.rows, self.row_versions, strict=True) if v > seen]
        body: dict[str, object] = {"rows": [r.model_dump(mode="json") for r in rows]}
        if self.summary is not None and self.summary_version > seen:
            body["summary"] = self.summary.model_dump(mode="json")
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class BatchSubscription(Place[_Feed]):
    """One page's place on a batch's feed."""

    async def updates(self) -> AsyncIterator[str]:
        """The whole state, then each change (as ``_Feed.message``), until the batch
        has ended or the page is gone."""
        feed, seen = self._feed, -1
        while True:
            if feed.version > seen and feed.summary is not None:
                version = feed.version
                message = feed.message(seen)
                seen = version
                yield message
                continue
            if not await self._changed():
                return


class BatchFeeds(FeedHub[_Feed, BatchSubscription]):
    """Each batch page's state, one reader per batch; limits and the count of open
    streams shared with the job pages' hub (vpsweb.web.feed.FeedHub)."""

    singular, plural = "batch", "batches"

    def _feed(self, key: str) -> _Feed:
        return _Feed(key)

    def _subscription(self, feed: _Feed, alive: Callable[[], bool]) -> BatchSubscription:
        return BatchSubscription(self, feed, alive)

    async def _read(self, batch_id: str, feed: _Feed) -> None:
        costs: asyncio.Queue[int] = asyncio.Queue()
        helpers: list[asyncio.Task[None]] = []
        try:
            batch = await self.client.batch(batch_id)
            feed.rows = rows_of(batch.record)
            feed.row_versions = [0] * len(feed.rows)
            index = {row.name: row.index for row in feed.rows}
            # The state now, before any page is told anything: a page arriving at an
            # ended batch gets its rows as they are in its first message.
            for event in await row_states(batch.events(timeout=0)):
                self._apply(feed, feed.rows[index[event.name]], event, costs)
            first = summary_of(await batch.progress())
            feed.set_summary(first.model_copy(update={"ended": False}))
            helpers += [
                asyncio.create_task(self._poll(batch, feed)),
                asyncio.create_task(self._costs(feed, costs)),
            ]
            async for event in batch.events():  # from the start again: said only if new
                self._apply(feed, feed.rows[index[event.name]], event, costs)
            await costs.join()  # every row's cost in before the page is told "ended"
            feed.set_summary(summary_of(await batch.progress()))
        except Exception as exc:  # once per batch, not once per page; the pages close
            log.warning("batch %s: %s: %s", batch_id, type(exc).__name__, exc)
            feed.error = exc
        finally:
            for task in helpers:
                task.cancel()
            feed.done = True
            feed.changed.set()

    @staticmethod
    def _apply(feed: _Feed, row: BatchRow, event: BatchEvent, costs: asyncio.Queue[int]) -> None:
        """A member's event on its row; the row is sent again, and its cost read once
        it ended, only when the event changed it."""
        before = (row.job_id, row.status, row.cause)
        apply_event(row, event)
        if (row.job_id, row.status, row.cause) != before:
            if feed.summary is not None:  # rows before the first message go in it whole
                feed.touch_row(row.index)
            if event.terminal:
                costs.put_nowait(row.index)

    async def _poll(self, batch: AsyncBatch[Any], feed: _Feed) -> None:
        """The counts, cost and ETA, every PROGRESS_S, or every other time ``events()``
        reads a big batch (``follow_every_s``: a read packs a command per member), so
        a page adds at most half again to what following the batch costs; a store
        briefly away: skipped."""
        every = max(PROGRESS_S, 2 * follow_every_s(len(feed.rows)))
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                # "ended" only in the reader's last word, once every row's cost is in.
                summary = summary_of(await batch.progress())
                feed.set_summary(summary.model_copy(update={"ended": False}))

    async def _costs(self, feed: _Feed, queue: asyncio.Queue[int]) -> None:
        """Each ended row's cost and notes, read once per batch (not once per page)."""
        while True:
            index = await queue.get()
            try:
                row = feed.rows[index]
                with contextlib.suppress(Exception):  # a cost not read is left blank
                    cost, notes = await job_end(self.client, row.job_id, row.status)
                    if (cost, notes) != (row.cost, row.notes):
                        row.cost, row.notes = cost, notes
                        feed.touch_row(index)
            finally:
                queue.task_done()
