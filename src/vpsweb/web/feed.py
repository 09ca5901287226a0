"""One reader per job, many pages: the web process's fan-out of a job's events.

Each open job page follows the job's event stream. Rather than one blocking Redis
read per page (200 pages, 200 connections), the first page of a job starts one
reader task; it appends every event to a list that pages replay from the start
(so a reload or a second tab shows the same state) and then wait on, all on the
event loop: no thread and no extra connection per page. The reader stops when
its last page leaves.

Limits (issue 21: 4 rounds of 200 dropped streams stalled the server):

* aiohttp no longer cancels a handler whose client hung up, and a page waiting
  for a quiet job writes nothing that could fail. One sweeper task checks the
  sockets of all waiting pages every ``SWEEP_S`` and wakes the feeds of those
  that left, so a dropped page lets go of its stream, and maybe of the reader,
  within a second, however quiet the job.
* Caps on streams per process, streams per job and jobs followed (each job a
  Redis connection): beyond them ``StreamsFull``, answered 503 + Retry-After.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

from aiohttp import web

from vpsweb import settings
from vpsweb.client.aio import AsyncClient
from vpsweb.domain.progress import ProgressEvent
from vpsweb.errors import SettingsError, VpswebError
from vpsweb.view import JobView

log = logging.getLogger("vpsweb.web")
SWEEP_S = 0.5
MAX_STREAMS_ENV = settings.WEB_MAX_STREAMS_ENV
MAX_STREAMS_PER_JOB_ENV = settings.WEB_MAX_STREAMS_PER_JOB_ENV
MAX_JOBS_FOLLOWED_ENV = settings.WEB_MAX_JOBS_FOLLOWED_ENV


class StreamsFull(VpswebError):
    """No room for another event stream now; the client should retry later."""

    def __init__(self, why: str, retry_after_s: int) -> None:
        super().__init__(why)
        self.retry_after_s = retry_after_s


class FeedBroken(VpswebError):
    """The job's reader failed (Redis unreachable, say); the page reconnects later."""


@dataclass
class StreamCount:
    """Event streams open in the web process, job pages' and batch pages' alike: the
    process's cap (``StreamLimits.streams``) is on their sum."""

    open: int = 0


@dataclass(frozen=True)
class StreamLimits:
    """How many event streams one web process serves at once (see docs/security.md)."""

    streams: int = 512
    per_job: int = 256
    jobs: int = 64  # jobs followed at once: one blocking Redis read each
    retry_after_s: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StreamLimits:
        """The defaults, with VPSWEB_WEB_MAX_STREAMS / _PER_JOB / _MAX_JOBS_FOLLOWED."""
        env = os.environ if env is None else env

        def number(name: str, default: int) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            if not text.isdigit() or int(text) < 1:
                raise SettingsError(f"{name} must be a whole number of at least 1, not {text!r}")
            return int(text)

        return cls(
            streams=number(MAX_STREAMS_ENV, cls.streams),
            per_job=number(MAX_STREAMS_PER_JOB_ENV, cls.per_job),
            jobs=number(MAX_JOBS_FOLLOWED_ENV, cls.jobs),
        )


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


P = TypeVar("P", bound="_Readable")


class _Readable(Protocol):
    """What a page's place reads of its feed."""

    done: bool
    error: BaseException | None
    changed: asyncio.Event


@dataclass
class _Feed:
    job_id: str
    events: list[ProgressEvent] = field(default_factory=list)
    # Beside each event, the job's view after it (vpsweb.view.JobView, as JSON): built
    # once per job, not once per page; the page draws it and decides nothing itself.
    views: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: list[Subscription] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return self.job_id

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class Place(Generic[P]):
    """One page's place on a feed (a job's, a batch's); ``close()`` it (or use
    ``with``) when done."""

    def __init__(self, hub: FeedHub[Any, Any], feed: P, alive: Callable[[], bool]) -> None:
        self._hub, self._feed, self.alive = hub, feed, alive
        self.closed = False

    async def _changed(self) -> bool:
        """Wait for the feed to change: False once it has ended (FeedBroken if its
        reader failed) or the page has left."""
        feed = self._feed
        if feed.done:
            if feed.error is not None:
                raise FeedBroken(str(feed.error)) from feed.error
            return False
        if not self.alive():
            return False
        await feed.changed.wait()
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._hub.leave(self._feed, self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription(Place[_Feed]):
    """One page's place on a job's feed."""

    async def events(self, after: str = "") -> AsyncIterator[ProgressEvent]:
        """The job's events after ``after`` (a stream id; "" for all), then live ones,
        until the terminal event or until the page is gone."""
        async for event, _ in self.updates(after):
            yield event

    async def updates(self, after: str = "") -> AsyncIterator[tuple[ProgressEvent, str]]:
        """As ``events``, each with the job's view after it (JSON)."""
        feed, seen = self._feed, 0
        while True:
            while seen < len(feed.events):
                event, view = feed.events[seen], feed.views[seen]
                seen += 1
                # A follower's warning has no stream id: replayed on every reconnect,
                # with its withdrawal, so the page shows what is true now.
                if after and event.id and _order(event.id) <= _order(after):
                    continue
                yield event, view
            if not await self._changed():
                return


def page_connected(request: web.Request) -> bool:
    """A subscription's ``alive``: whether the page's socket is still open."""
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def event_stream(request: web.Request) -> web.StreamResponse:
    """The prepared response an SSE handler writes its messages to."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


class _Followed(Protocol):
    """What a hub needs of a feed (a job's, a batch's)."""

    subscribers: list[Any]
    task: asyncio.Task[None] | None
    done: bool

    @property
    def key(self) -> str: ...

    def wake(self) -> None: ...


F = TypeVar("F", bound=_Followed)
S = TypeVar("S")


class FeedHub(abc.ABC, Generic[F, S]):
    """One reader per followed thing (a job, a batch), many pages: the limits, the
    count of open streams, the readers' start and stop and the sweeper, shared by
    the job pages' and the batch pages' hubs, which say what a feed holds and how it
    is read. Options: client (the web process's AsyncClient), limits (default: from
    the environment, see ``StreamLimits.from_env``), count (the process's open
    streams, shared by every hub)."""

    singular, plural = "job", "jobs"  # as the limits' messages name what is followed

    def __init__(
        self,
        client: AsyncClient,
        limits: StreamLimits | None = None,
        count: StreamCount | None = None,
    ) -> None:
        self.client = client
        self.limits = limits or StreamLimits.from_env()
        self.count = count or StreamCount()
        self.feeds: dict[str, F] = {}
        self.streams = 0  # this hub's own (the sweeper's); ``count``: the process's
        self._sweeper: asyncio.Task[None] | None = None

    @abc.abstractmethod
    def _feed(self, key: str) -> F: ...

    @abc.abstractmethod
    def _subscription(self, feed: F, alive: Callable[[], bool]) -> S: ...

    @abc.abstractmethod
    async def _read(self, key: str, feed: F) -> None: ...

    def check_room(self) -> None:
        """StreamsFull if the process serves its most streams (before any Redis read)."""
        if self.count.open >= self.limits.streams:
            raise StreamsFull(
                f"this server follows {self.count.open} event streams, its most",
                self.limits.retry_after_s,
            )

    async def open(self, request: web.Request, find: Callable[[], Awaitable[str]]) -> S:
        """A page's place on the feed of what ``find`` names (a 404 of its own when
        there is no such thing), or 503 with Retry-After beyond the stream limits,
        checked before ``find`` reads Redis."""
        try:
            self.check_room()
            key = await find()
            return self.subscribe(key, alive=lambda: page_connected(request))
        except StreamsFull as full:
            raise web.HTTPServiceUnavailable(
                text=f"{full}; retry later", headers={"Retry-After": str(full.retry_after_s)}
            ) from None

    def subscribe(self, key: str, alive: Callable[[], bool] = lambda: True) -> S:
        """A place on ``key``'s feed, starting its reader if it has none; StreamsFull
        beyond a limit. ``alive()`` says whether the page is still there."""
        self.check_room()
        feed = self.feeds.get(key)
        retry = self.limits.retry_after_s
        if feed is None and len(self.feeds) >= self.limits.jobs:
            raise StreamsFull(
                f"this server follows {len(self.feeds)} {self.plural}, its most", retry
            )
        if feed is not None and len(feed.subscribers) >= self.limits.per_job:
            raise StreamsFull(
                f"{self.singular} {key} has {len(feed.subscribers)} streams open", retry
            )
        if feed is None:
            feed = self.feeds[key] = self._feed(key)
            feed.task = asyncio.create_task(self._read(key, feed))
        subscription = self._subscription(feed, alive)
        feed.subscribers.append(subscription)
        self.streams += 1
        self.count.open += 1
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())
        return subscription

    def leave(self, feed: F, subscription: S) -> None:
        """A subscription closes (its ``close`` calls this)."""
        feed.subscribers.remove(subscription)
        self.streams -= 1
        self.count.open -= 1
        if not feed.subscribers:  # nobody watches: stop reading (a page starts again)
            if self.feeds.get(feed.key) is feed:
                del self.feeds[feed.key]
            if feed.task is not None and not feed.done:
                feed.task.cancel()

    async def _sweep(self) -> None:
        """Wake the feeds whose pages left; ends when no page is open."""
        try:
            while self.streams:
                await asyncio.sleep(SWEEP_S)
                for feed in list(self.feeds.values()):
                    if any(not s.alive() for s in feed.subscribers):
                        feed.wake()
        finally:
            self._sweeper = None

    async def close(self) -> None:
        tasks = [f.task for f in self.feeds.values() if f.task is not None]
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.feeds.clear()


class JobFeeds(FeedHub[_Feed, Subscription]):
    """Each job page's events (and its view after each), one reader per job."""

    def _feed(self, key: str) -> _Feed:
        return _Feed(key)

    def _subscription(self, feed: _Feed, alive: Callable[[], bool]) -> Subscription:
        return Subscription(self, feed, alive)

    async def _read(self, job_id: str, feed: _Feed) -> None:
        try:
            job = await self.client.get(job_id)
            view = JobView.of(job_id, (await job.record()).plan)
            async for event in job.events():
                view.apply(event)
                feed.views.append(view.model_dump_json(exclude={"fan_out_span"}))
                feed.events.append(event)
                feed.wake()
        except Exception as exc:  # once per job, not once per page; the pages close
            log.warning("events of job %s: %s: %s", job_id, type(exc).__name__, exc)
            feed.error = exc
        finally:
            feed.done = True
            feed.changed.set()
