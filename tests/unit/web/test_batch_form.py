"""The batch form's reading, bounds and view, on a bare aiohttp app (no services).

The whole page runs against a real cluster in tests/integration/web/test_web_batches.py
and in Chromium in tests/browser/test_web_batches.py; these pin each rule quickly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from vpsweb.domain.batch import BatchCounts, BatchEvent, BatchProgress
from vpsweb.web import batch_forms
from vpsweb.web.batch_pages import body_limits
from vpsweb.web.batch_views import BatchRow, apply_event, summary_of
from vpsweb.web.guard import FIELD, HEADER, Guard


def _app(guard: Guard) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=guard.token(request))

    async def batches(request: web.Request) -> web.Response:
        form = batch_forms.collect(await batch_forms.post_of(request))
        return web.json_response(
            {"files": sorted(form.files), "manifest": form.manifest, "problems": form.problems}
        )

    app = web.Application(middlewares=[body_limits(frozenset({"/batches"})), guard.middleware()])
    app.on_response_prepare.append(guard.on_prepare)
    app.add_routes([web.get("/", page), web.post("/batches", batches), web.post("/jobs", batches)])
    return app


def _run(body: Callable[[TestClient[Any, Any], str], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(_app(Guard()), host="127.0.0.1")) as client:
            token = await (await client.get("/")).text()
            await body(client, token)

    asyncio.run(main())


def _form(token: str, files: list[tuple[str, str, bytes]], **fields: str) -> FormData:
    data = FormData(quote_fields=False)  # file names as browsers send them
    data.add_field(FIELD, token)
    for name, value in fields.items():
        data.add_field(name, value)
    for name, filename, content in files:
        data.add_field(name, content, filename=filename)
    return data


def test_uploads_are_named_by_their_last_part_and_checked_as_a_whole() -> None:
    async def body(client: TestClient[Any, Any], token: str) -> None:
        files = [
            ("poem_files", "C:\\Users\\me\\fog.txt", b"fog"),
            ("poem_files", "poems/fog.txt", b"again"),
            ("poem_files", "", b""),  # a file input left empty
            ("manifest", "list.xlsx", b"x"),
            ("glossary_or_else", "g.csv", b"x"),  # not a field of this form: ignored
        ]
        got = await (await client.post("/batches", data=_form(token, files))).json()
        assert got["files"] == ["fog.txt"] and got["manifest"] is None
        assert got["problems"] == [
            "fog.txt: two uploaded files have this name: rename one",
            "list.xlsx: a manifest is a .yaml, .yml, .jsonl, .ndjson, .csv file",
        ]
        two = [("manifest", "a.csv", b"text\nx\n"), ("manifest", "b.yaml", b"- x")]
        got = await (await client.post("/batches", data=_form(token, two))).json()
        assert got["manifest"] == "a.csv"
        assert got["problems"] == ["b.yaml: one manifest at a time (a.csv given)"]

    _run(body)


def test_the_batch_form_alone_takes_a_large_body_and_many_files() -> None:
    async def body(client: TestClient[Any, Any], token: str) -> None:
        big = [("poem_files", "big.txt", b"x" * (2 * 2**20))]  # above aiohttp's 1 MiB
        assert (await client.post("/jobs", data=_form(token, big))).status == 413
        ok = await client.post("/batches", data=_form(token, big))
        assert ok.status == 200 and (await ok.json())["files"] == ["big.txt"]
        many = [("poem_files", f"{i}.txt", b"p") for i in range(batch_forms.MAX_UPLOAD_FILES + 1)]
        got = await (await client.post("/batches", data=_form(token, many))).json()
        assert got["problems"] == [
            "1,001 poem files: the web page takes at most 1,000 at once (send the batch in "
            "parts, or use `vpsweb batch`)"
        ]
        huge = [("poem_files", "huge.txt", b"x" * (batch_forms.MAX_BODY_BYTES + 1))]
        refused = await client.post("/batches", data=_form(token, huge))
        assert refused.status == 413 and "send the batch in parts" in await refused.text()
        # The bound holds before the token is checked, and the token is still required.
        assert (await client.post("/batches", data=_form("forged", big))).status == 403
        headers = {HEADER: token, "Origin": "http://elsewhere.example"}
        assert (
            await client.post("/batches", data=_form(token, big), headers=headers)
        ).status == 403

    _run(body)


def test_the_defaults_and_options_of_the_form() -> None:
    form = batch_forms.BatchForm(
        values={"source_lang": "en", "parallel_count": " 3 ", "author": "", "budget": "x"},
        files={"a.txt": b"a", "b.txt": b"b"},
    )
    assert form.defaults() == {"source_lang": "en", "parallel_count": "3"}
    assert form.budget() is None and form.problems == ["budget: 'x' is not a number"]
    assert form.name() == "2 poems" and not form.offline and not form.force
    named = batch_forms.BatchForm(values={"name": "  Tang\n poems "}, manifest="tang.csv")
    assert named.name() == "Tang poems"
    assert batch_forms.BatchForm(manifest="tang.csv").name() == "tang"


def test_the_glossary_goes_to_every_poem_with_its_mode_or_says_each_bad_line() -> None:
    typed = batch_forms.BatchForm(
        values={"glossary": "长安: Chang'an\n", "glossary_mode": "strict"}
    )
    glossary = typed.defaults()["glossary"]
    assert glossary["mode"] == "strict" and glossary["terms"][0]["target"] == "Chang'an"
    rows = "source,target,note\n长安,Chang'an,唐朝的首都在这里\n洛阳,Luoyang,东都也是重要的城市\n"
    gbk = (rows + ",nothing,\n").encode("gb18030")
    upload = batch_forms.BatchForm(
        values={"source_lang": "zh-CN", "target_lang": "en"}, glossary_file=("names.csv", gbk)
    )
    assert "glossary" not in upload.defaults()
    assert len(upload.problems) == 1 and upload.problems[0].startswith("names.csv: row 4")
    wrong = batch_forms.BatchForm(values={"glossary": "a: b", "glossary_mode": "loose"})
    assert "glossary" not in wrong.defaults()
    assert wrong.problems == ["glossary_mode: expected flag or strict, got 'loose'"]
    assert batch_forms.BatchForm().defaults() == {}


def _progress(**counts: int) -> BatchProgress:
    total = sum(counts.values())
    finished = total - counts.get("queued", 0) - counts.get("running", 0)
    return BatchProgress(
        batch_id="0123456789ab",
        counts=BatchCounts(total=total, **counts),
        calls=3,
        tokens=300,
        cost=0.0123,
        currency="CNY",
        costs={"CNY": 0.0123},
        elapsed_s=65.0,
        eta_s=None if finished == 0 else 30.0,
        percent=finished / total * 100,
        running=[],
    )


def test_the_summary_says_counts_cost_and_times() -> None:
    s = summary_of(_progress(queued=1, running=1, succeeded=1))
    assert s.percent == 33 and s.counts["running"] == 1 and s.total == 3
    assert (s.cost, s.elapsed, s.eta, s.ended) == ("0.012300 CNY", "1:05", "30.0s", False)
    assert s.status_text == "1 of 3 poems finished (1 running, 1 succeeded)"
    s = summary_of(_progress(queued=2))
    assert s.eta == "—" and s.status_text == "0 of 2 poems finished"
    s = summary_of(_progress(succeeded=2, failed=1))
    assert s.ended and s.eta == "done" and s.percent == 100
    assert s.status_text == "All 3 poems finished: 2 succeeded, 1 failed."


def test_a_row_follows_its_members_events() -> None:
    row = BatchRow(index=0, name="fog", where="fog.txt", job_id="aaaaaaaaaaaa")
    assert (row.label, row.css) == ("· queued", "pending")

    def event(kind: Any, cause: str | None = None, job: str = "aaaaaaaaaaaa") -> BatchEvent:
        return BatchEvent(kind=kind, name="fog", where="fog.txt", job_id=job, cause=cause)

    apply_event(row, event("job_started"))
    assert (row.label, row.css) == ("… running", "running")
    apply_event(row, event("job_failed", "Initial Translation: timeout"))
    assert row.label == "✗ failed: Initial Translation: timeout" and row.css == "failed"
    apply_event(row, event("job_failed", "the job is no longer stored (expired)"))
    assert row.status == "expired"
    apply_event(row, event("job_started", job="bbbbbbbbbbbb"))  # resumed: a new job
    assert row.job_id == "bbbbbbbbbbbb" and row.cause == ""
    apply_event(row, event("job_cancelled", job="bbbbbbbbbbbb"))
    assert row.label == "■ cancelled" and row.css == "cancelled"
