"""One reader per job, many pages: the web process's fan-out of a job's events.

Each open job page follows the job's event stream. Rather than one blocking Redis
read per page (200 pages, 200 connections), the first page of a job starts one
reader task; it appends every event to a list that pages replay from the start
(so a reload or a second tab shows the same state) and then wait on, all on the
event loop: no thread and no extra connection per page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from vpsweb.async_client import AsyncClient
from vpsweb.progress import ProgressEvent


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


@dataclass
class _Feed:
    events: list[ProgressEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    readers: int = 0
    done: bool = False
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None


class JobFeeds:
    """Options: client (the web process's AsyncClient)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.feeds: dict[str, _Feed] = {}

    async def _read(self, job_id: str, feed: _Feed) -> None:
        try:
            job = await self.client.get(job_id)
            async for event in job.events():
                feed.events.append(event)
                feed.changed.set()
                feed.changed = asyncio.Event()
        except Exception as exc:  # the pages say so and close
            feed.error = exc
        finally:
            feed.done = True
            feed.changed.set()

    async def follow(self, job_id: str, after: str = "") -> AsyncIterator[ProgressEvent]:
        """The job's events after ``after`` (a stream id; "" for all), then live ones,
        until the terminal event."""
        feed = self.feeds.get(job_id)
        if feed is None:
            feed = self.feeds[job_id] = _Feed()
            feed.task = asyncio.create_task(self._read(job_id, feed))
        feed.readers += 1
        try:
            seen = 0
            while True:
                while seen < len(feed.events):
                    event = feed.events[seen]
                    seen += 1
                    if after and _order(event.id) <= _order(after):
                        continue
                    yield event
                if feed.done:
                    if feed.error is not None:
                        raise feed.error
                    return
                await feed.changed.wait()
        finally:
            feed.readers -= 1
            if feed.readers == 0:  # nobody watches: stop reading (a page starts again)
                self.feeds.pop(job_id, None)
                if feed.task is not None and not feed.done:
                    feed.task.cancel()

    async def close(self) -> None:
        for feed in self.feeds.values():
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
        self.feeds.clear()
