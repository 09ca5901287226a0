"""`vpsweb web`: submit a poem, watch its candidates arrive, read and compare the result.

aiohttp, not FastAPI: it is already a dependency (the simulator), it streams
Server-Sent Events natively, and the page needs nothing a framework adds. The
web process talks only to the async client (no worker or Celery code): every
page is a read of the store, every job page one subscriber of a shared feed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import escape

from vpsweb.client.aio import AsyncClient
from vpsweb.errors import AnswerRefused, AnswerRejected, JobNotFound, RequestInvalid
from vpsweb.web import forms, views
from vpsweb.web.batch_feed import BatchFeeds
from vpsweb.web.batch_pages import BATCH_FEEDS, BatchPages, body_limits
from vpsweb.web.feed import (
    FeedBroken,
    JobFeeds,
    StreamCount,
    StreamLimits,
    event_stream,
)
from vpsweb.web.guard import Guard

CLIENT = web.AppKey("client", AsyncClient)
FEEDS = web.AppKey("feeds", JobFeeds)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
GUARD = web.AppKey("guard", Guard)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(request: web.Request, name: str, http_status: int = 200, **context: Any) -> web.Response:
    token = request.app[GUARD].token(request)
    html = request.app[TEMPLATES].get_template(name).render(csrf_token=token, **context)
    return web.Response(text=html, content_type="text/html", status=http_status)


async def submit_page(request: web.Request) -> web.Response:
    return _page(request, "submit.html", **forms.context(request.app[CLIENT].config, {}, {}))


async def submit(request: web.Request) -> web.StreamResponse:
    client = request.app[CLIENT]
    if request.content_type not in forms.CONTENT_TYPES:
        raise web.HTTPUnsupportedMediaType(text=forms.UNSUPPORTED.format(request.content_type))
    values = await forms.read(request)
    try:
        plan = client.plan(
            forms.request_of(values),
            offline=bool(values.get("offline")),
            manual=bool(values.get("manual")),
        )
    except RequestInvalid as exc:
        errors = forms.errors_by_field(exc.errors)
        return _page(request, "submit.html", 422, **forms.context(client.config, values, errors))
    job = await client.submit_plan(plan)
    raise web.HTTPSeeOther(f"/jobs/{job.id}")


async def _job(request: web.Request) -> Any:
    try:
        return await request.app[CLIENT].get(request.match_info["job"])
    except JobNotFound:
        raise web.HTTPNotFound(text=f"no job {request.match_info['job']!r}") from None


async def job_page(request: web.Request) -> web.Response:
    job = await _job(request)
    context = await views.job_context(request.app[CLIENT], job)
    if context["ended"] and context["status"] == "succeeded":
        context["result_html"] = await _result_html(request, job.id)
    return _page(request, "job.html", **context)


async def _result_html(request: web.Request, job_id: str) -> str:
    output = await views.output_of(request.app[CLIENT], job_id)
    if output is None:  # say why: failed, cancelled, not finished, or truly expired
        text = await views.no_result_text(request.app[CLIENT], job_id)
        return f'<p class="no-result" role="status">{escape(text)}</p>'
    return request.app[TEMPLATES].get_template("result.html").render(**views.result_context(output))


async def result_fragment(request: web.Request) -> web.Response:
    job = await _job(request)
    return web.Response(text=await _result_html(request, job.id), content_type="text/html")


async def result_file(request: web.Request) -> web.Response:
    job = await _job(request)
    output = await views.output_of(request.app[CLIENT], job.id)
    if output is None:
        raise web.HTTPNotFound(text="no result (yet, or expired)")
    kind = request.match_info["kind"]
    text, ctype = views.download(output, kind)
    disposition = f'attachment; filename="vpsweb-{job.id}.{kind}"'
    return web.Response(text=text, content_type=ctype, headers={"Content-Disposition": disposition})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the job's whole history, then live events; one message per
    event, each with its stream id (a reconnecting browser resumes after it) and the
    job's view after it (``view``: vpsweb.view.JobView), which is all the page draws.

    Beyond the stream limits (see vpsweb.web.feed): 503 with Retry-After, before any
    Redis read. A page that hangs up, or a job whose reader failed (logged once by
    the feed), ends the stream without a traceback; the browser reconnects."""

    async def job_id() -> str:
        return (await _job(request)).id

    with await request.app[FEEDS].open(request, job_id) as subscription:
        response = await event_stream(request)
        after = request.headers.get("Last-Event-ID", "")
        with contextlib.suppress(ConnectionError, FeedBroken):
            async for event, view in subscription.updates(after):
                # The raw event (for other readers) and the view the page draws.
                data = event.model_dump_json(exclude_defaults=True)[:-1] + f',"view":{view}}}'
                # A follower's warning (no stream id) keeps the browser's last id.
                head = f"id: {event.id}\n" if event.id else ""
                await response.write(f"{head}data: {data}\n\n".encode())
    return response


async def cancel(request: web.Request) -> web.Response:
    job = await _job(request)
    return web.json_response({"cancelled": await job.cancel()})


async def pending(request: web.Request) -> web.Response:
    job = await _job(request)
    prompts = await job.pending()
    return web.json_response(
        [{"key": p.key, "display_name": p.display_name, "text": p.text()} for p in prompts]
    )


async def answer(request: web.Request) -> web.Response:
    job = await _job(request)
    form = await request.post()
    try:
        moved = await job.answer(str(form.get("key", "")), str(form.get("text", "")))
    except (AnswerRejected, AnswerRefused) as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=422)
    return web.json_response({"ok": True, "moved_on": moved})


async def jobs_page(request: web.Request) -> web.Response:
    rows = await views.job_rows(request.app[CLIENT])
    return _page(request, "jobs.html", jobs=rows)


def basic_auth(user: str, password: str) -> Any:
    expected = f"{user}:{password}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        given = b""
        if header.startswith("Basic "):
            try:
                given = base64.b64decode(header[6:], validate=True)
            except (binascii.Error, ValueError):
                given = b""
        if not hmac.compare_digest(given, expected):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="vpsweb"'})
        return await handler(request)

    return check


def create_app(
    client: AsyncClient,
    *,
    auth: tuple[str, str] | None = None,
    guard: Guard | None = None,
    limits: StreamLimits | None = None,
) -> web.Application:
    """The page; ``guard`` (default: trust only this server's own origin) refuses
    cross-site changes and adds the security headers (see vpsweb.web.guard)."""
    guard = guard or Guard()
    # Authentication first: a stranger learns nothing, not even why a POST was refused
    # (the batch form's larger body limit only sets a bound: it reads nothing).
    middlewares = [body_limits(frozenset({"/batches"})), *([basic_auth(*auth)] if auth else [])]
    app = web.Application(middlewares=[*middlewares, guard.middleware()])
    app.on_response_prepare.append(guard.on_prepare)
    app[GUARD] = guard
    app[CLIENT] = client
    streams = StreamCount()  # job and batch pages share the process's stream cap
    app[FEEDS] = JobFeeds(client, limits, streams)
    app[BATCH_FEEDS] = BatchFeeds(client, app[FEEDS].limits, streams)
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.PackageLoader("vpsweb.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    static = resources.files("vpsweb.web").joinpath("static")
    app.add_routes(
        [
            web.get("/", submit_page),
            web.post("/jobs", submit),
            web.get("/jobs", jobs_page),
            web.get("/jobs/{job}", job_page),
            web.get("/jobs/{job}/events", events),
            web.get("/jobs/{job}/result", result_fragment),
            web.get("/jobs/{job}/result.{kind:json|md}", result_file),
            web.post("/jobs/{job}/cancel", cancel),
            web.get("/jobs/{job}/pending", pending),
            web.post("/jobs/{job}/answer", answer),
            *BatchPages(lambda request: request.app[CLIENT], _page).routes(),
            web.static("/static", str(static)),
        ]
    )

    async def closing(app: web.Application) -> None:
        await app[FEEDS].close()
        await app[BATCH_FEEDS].close()
        await app[CLIENT].close()

    app.on_cleanup.append(closing)
    return app
