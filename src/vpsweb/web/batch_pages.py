"""The batch pages: a form that takes a collection, a page per batch with live counts
and a row per poem, cancel, and the anthology and summary made on request.

Like the job pages, these talk only to the async client (``submit_batch``,
``batch(id)``, ``batches()``), and every unsafe request passes the CSRF guard
(vpsweb.web.guard) before its handler runs. A collection is validated whole before
anything is enqueued: the page shows every problem and nothing is submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vpsweb.batches.uploads import load_uploads
from vpsweb.client.aio import AsyncClient
from vpsweb.client.aio_batch import AsyncBatch
from vpsweb.errors import BatchNotFound, RequestInvalid
from vpsweb.web import batch_forms, batch_views
from vpsweb.web.batch_feed import BatchFeeds
from vpsweb.web.feed import FeedBroken, event_stream

Page = Callable[..., web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BATCH_FEEDS = web.AppKey("batch_feeds", BatchFeeds)
FORM_TYPE = "multipart/form-data"
UNSUPPORTED = (
    "POST /batches takes a form with files (multipart/form-data), not {!r}; scripts can "
    "use the Python client (vpsweb.Client.submit_batch) or `vpsweb batch` instead"
)


class BatchPages:
    """The handlers, given the app's client, its page renderer and its feeds."""

    def __init__(self, client: Callable[[web.Request], AsyncClient], page: Page) -> None:
        self.client, self.page = client, page

    async def form_page(self, request: web.Request) -> web.Response:
        cfg = self.client(request).config
        return self.page(request, "batch_new.html", **batch_forms.context(cfg, {}, []))

    async def submit(self, request: web.Request) -> web.StreamResponse:
        client = self.client(request)
        if request.content_type != FORM_TYPE:
            raise web.HTTPUnsupportedMediaType(text=UNSUPPORTED.format(request.content_type))
        posted = await batch_forms.post_of(request)
        limit = client.config.pipeline.parallel_count.max
        form, entries = await asyncio.to_thread(_validated, posted, limit)
        budget = form.budget()
        if not form.problems:
            try:
                batch = await client.submit_batch(
                    entries, name=form.name(), budget=budget, force=form.force, offline=form.offline
                )
            except RequestInvalid as exc:
                form.problems += exc.errors
        if form.problems:
            context = batch_forms.context(client.config, form.values, form.problems)
            return self.page(request, "batch_new.html", 422, **context)
        raise web.HTTPSeeOther(f"/batches/{batch.id}")

    async def _batch(self, request: web.Request) -> AsyncBatch[Any]:
        try:
            return await self.client(request).batch(request.match_info["batch"])
        except BatchNotFound:
            raise web.HTTPNotFound(text=f"no batch {request.match_info['batch']!r}") from None

    async def batch_page(self, request: web.Request) -> web.Response:
        batch = await self._batch(request)
        progress = await batch.progress()
        rows = batch_views.rows_of(batch.record)
        for event in await batch_views.row_states(batch.events(timeout=0)):
            batch_views.apply_event(rows[_index(rows, event.name)], event)
        context = batch_views.page_context(batch.record, progress, rows)
        return self.page(request, "batch.html", **context)

    async def list_page(self, request: web.Request) -> web.Response:
        records = await self.client(request).batches(50)
        return self.page(request, "batches.html", batches=records)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the batch's whole state, then what changes (see
        vpsweb.web.batch_feed); 503 + Retry-After beyond the stream limits."""

        async def batch_id() -> str:
            return (await self._batch(request)).id

        with await request.app[BATCH_FEEDS].open(request, batch_id) as subscription:
            response = await event_stream(request)
            with contextlib.suppress(ConnectionError, FeedBroken):
                async for message in subscription.updates():
                    await response.write(f"data: {message}\n\n".encode())
        return response

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """Cancel every unfinished poem (finished ones keep their results). The page's
        form posts it (then shows the batch again); a script gets JSON."""
        batch = await self._batch(request)
        cancelled = await batch.cancel()
        if request.headers.get("Accept", "").startswith("application/json"):
            return web.json_response({"cancelled": cancelled})
        raise web.HTTPSeeOther(f"/batches/{batch.id}")

    async def download(self, request: web.Request) -> web.Response:
        """One of the batch's files, made now from its results (a batch not finished:
        what is done so far). Named by the batch's id only: no user text in a header."""
        batch = await self._batch(request)
        kind = request.match_info["file"]
        if kind not in batch_views.FILES:
            raise web.HTTPNotFound(text=f"no such file: {kind}")
        items = await batch_views.anthology_items(self.client(request), batch.record)
        title = batch_views.batch_title(batch.record)
        body = await asyncio.to_thread(batch_views.render_file, kind, items, title)
        ctype, disposition = batch_views.FILES[kind]
        headers = {
            "Content-Type": ctype,
            "Content-Disposition": f'{disposition}; filename="vpsweb-batch-{batch.id}-{kind}"',
            "Cache-Control": "no-store",
        }
        if kind == "anthology.html":
            headers["Content-Security-Policy"] = batch_views.ANTHOLOGY_HEADER_CSP
        return web.Response(body=body, headers=headers)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/batches", self.list_page),
            web.get("/batches/new", self.form_page),
            web.post("/batches", self.submit),
            web.get("/batches/{batch}", self.batch_page),
            web.get("/batches/{batch}/events", self.events),
            web.post("/batches/{batch}/cancel", self.cancel),
            web.get("/batches/{batch}/{file}", self.download),
        ]


def _validated(posted: Any, max_parallel_count: int) -> tuple[batch_forms.BatchForm, list[Any]]:
    """The form and its entries, every problem found (in a thread: files are decoded,
    manifests parsed)."""
    form = batch_forms.collect(posted)
    if form.problems:
        return form, []
    defaults = form.defaults()  # a bad glossary is said, and the poems still checked
    try:
        entries = load_uploads(
            form.files, defaults, manifest=form.manifest, max_parallel_count=max_parallel_count
        )
    except RequestInvalid as exc:
        form.problems += exc.errors
        return form, []
    return form, [] if form.problems else entries


def _index(rows: list[batch_views.BatchRow], name: str) -> int:
    return next(r.index for r in rows if r.name == name)


def body_limits(paths: frozenset[str]) -> Any:
    """A middleware giving the batch form (``paths``, POST) its larger body and field
    limits; every other request keeps aiohttp's (1 MiB). First in the chain, before
    anything reads the body; an upload beyond them is a plain 413 saying what to do."""

    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path in paths:
            request = request.clone(
                client_max_size=batch_forms.MAX_BODY_BYTES,
                client_max_fields=batch_forms.MAX_FIELDS,
            )
            try:
                return await handler(request)
            except web.HTTPRequestEntityTooLarge:
                raise web.HTTPRequestEntityTooLarge(
                    max_size=batch_forms.MAX_BODY_BYTES,
                    actual_size=request.content_length or 0,
                    text=batch_forms.TOO_LARGE,
                ) from None
        return await handler(request)

    return limits
