"""The batch pages over real HTTP, against a real `vpsweb web`, Redis and worker: a
collection uploaded, followed live to its end, its files downloaded; bad collections
refused whole with nothing enqueued; the CSRF guard on the form and on cancel.

The same in a real browser: tests/browser/test_web_batches.py.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.web import Web
from tests.helpers.web_session import Session

pytestmark = pytest.mark.integration

DEFAULTS = {"source_lang": "en", "target_lang": "zh-CN", "parallel_count": "1", "offline": "1"}
POEMS = [
    ("01_fog.txt", b"The fog comes\non little cat feet.\n"),
    ("02_grass.txt", b"Pile the bodies high at Austerlitz and Waterloo.\nShovel them under.\n"),
    ("03_window.txt", b"Night from a railroad car window\nis a great, dark, soft thing.\n"),
]
BATCHES = "vpsweb:batches"


def _messages(url: str, timeout_s: float = 90) -> list[dict[str, Any]]:
    """Every message of a batch's event stream until it says the batch ended."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    with urllib.request.urlopen(url, timeout=timeout_s) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
                if found[-1].get("summary", {}).get("ended"):
                    return found
            assert time.monotonic() < deadline, "the batch did not end in time"
    raise AssertionError(f"the stream closed before the end: {found[-1:]}")


def _submit(tab: Session, files: list[tuple[str, str, bytes]], **fields: str) -> Any:
    tab.load("/batches/new")
    return tab.post_multipart("/batches", {**DEFAULTS, **fields}, files)


def test_a_collection_runs_live_to_its_end_and_gives_its_files(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    web = None
    try:
        c.add_worker()
        web = Web(c, tmp_path)
        tab = Session(web.url)
        files = [("poem_files", name, data) for name, data in POEMS]
        # A glossary for every poem; the simulator misses the term whose note says so.
        glossary = "fog: 雾\nWaterloo: {target: 滑铁卢, note: glossmiss}\n"
        files.append(("glossary_file", "names.yaml", glossary.encode()))
        status, headers, page = _submit(tab, files, name="Chicago poems")
        assert status == 303, page
        path = headers["Location"]
        batch_id = path.rsplit("/", 1)[-1]

        status, _, page = tab.request("GET", path)
        assert status == 200 and "Chicago poems" in page and 'role="progressbar"' in page
        client = c.client()
        jobs = [m.job_id for m in client.batch(batch_id).record.entries]
        assert len(jobs) == 3 and all(f'href="/jobs/{j}"' in page for j in jobs)
        plans = [client.record(j).plan for j in jobs]
        assert {p.priority.value for p in plans} == {"batch"}
        glossaries = [p.request.glossary for p in plans]  # every poem has the glossary
        assert all(g is not None and g.mode == "flag" for g in glossaries)
        assert {g.terms[1].target for g in glossaries if g is not None} == {"滑铁卢"}

        messages = _messages(f"{web.url}{path}/events")
        first, last = messages[0], messages[-1]
        assert len(first["rows"]) == 3  # the whole state first, then what changed
        percents = [m["summary"]["percent"] for m in messages if "summary" in m]
        assert percents == sorted(percents) and percents[-1] == 100
        summary = last["summary"]
        assert summary["counts"]["succeeded"] == 3 and summary["eta"] == "done"
        assert "CNY" in summary["cost"]
        rows: dict[int, dict[str, Any]] = {}
        for m in messages:
            rows |= {r["index"]: r for r in m["rows"]}
        assert [rows[i]["label"] for i in range(3)] == ["✓ succeeded"] * 3
        assert all("CNY" in rows[i]["cost"] for i in range(3))
        assert [rows[i]["name"] for i in range(3)] == ["01-fog", "02-grass", "03-window"]
        # What to look at: the poem whose translation missed a glossary term, and why.
        assert not [n for n in rows[0]["notes"] + rows[2]["notes"] if "glossary" in n]
        assert any(n.startswith("glossary: ") and "Waterloo" in n for n in rows[1]["notes"])

        # The files, made now from the results, each with its type and a safe name.
        expected = {
            "anthology.html": "text/html",
            "anthology.md": "text/markdown",
            "summary.csv": "text/csv",
            "summary.jsonl": "application/x-ndjson",
        }
        for kind, ctype in expected.items():
            status, got, _ = tab.request("GET", f"{path}/{kind}")
            assert status == 200 and got["Content-Type"].startswith(ctype), (kind, got)
            name = f'filename="vpsweb-batch-{batch_id}-{kind}"'
            assert got["Content-Disposition"].endswith(name), got
            assert got["X-Content-Type-Options"] == "nosniff"
        status, got, html = tab.request("GET", f"{path}/anthology.html")
        assert got["Content-Disposition"].startswith("inline")
        assert "script-src" not in got["Content-Security-Policy"]  # none at all: default none
        assert "sandbox" in got["Content-Security-Policy"]
        assert "Chicago poems" in html and "The fog comes" in html and "<script" not in html
        _, _, csv = tab.request("GET", f"{path}/summary.csv")
        assert csv.startswith("\ufeff") and len(csv.strip().splitlines()) == 4
        _, _, jsonl = tab.request("GET", f"{path}/summary.jsonl")
        assert [json.loads(line)["status"] for line in jsonl.splitlines()] == ["succeeded"] * 3
        assert tab.request("GET", f"{path}/secrets.txt")[0] == 404
        assert tab.request("GET", "/batches/0123456789ab")[0] == 404

        status, _, listing = tab.request("GET", "/batches")
        assert status == 200 and path in listing

        # The same collection again: a new batch, whose poems are the jobs already done.
        status, headers, _ = _submit(tab, files, name="Chicago poems")
        assert status == 303 and headers["Location"] != path
        assert c.store.zcard("vpsweb:jobs") == 3
        again = _messages(f"{web.url}{headers['Location']}/events", timeout_s=30)
        labels = [r["label"] for r in again[0]["rows"]]
        assert labels == ["✓ succeeded (reused: translated before)"] * 3, labels
        assert again[-1]["summary"]["cost"] == "0.000000 CNY"  # this batch paid nothing
    finally:
        if web is not None:
            web.close()
        c.close()


BAD_MANIFEST = "\n".join(
    [
        "poems:",
        "  - file: fog.txt",
        "  - file: missing.txt",
        "  - file: /etc/passwd",
        "  - {text: a poem, target_lang: xx}",
        "  - {text: a poem, colour: red}",
        "  - file: fog.txt",  # the same poem twice
        "  - text: " + "x" * 60_000,
    ]
)


def test_a_bad_collection_is_refused_whole_and_nothing_is_enqueued(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)  # no worker: nothing would run anyway
    web = Web(c, tmp_path)
    try:
        store, tab = c.store, Session(web.url)
        manifest = [
            ("manifest", "poems.yaml", BAD_MANIFEST.encode()),
            ("poem_files", "fog.txt", POEMS[0][1]),
        ]
        status, _, page = _submit(tab, manifest)
        assert status == 422, page
        for said in (
            "missing.txt: no uploaded file of that name",
            "/etc/passwd: a manifest sent from the web page names files uploaded with it",
            "poems.yaml line 5: target_lang: unsupported target language &#39;xx&#39;",
            "poems.yaml line 6: unknown key &#39;colour&#39;",
            "poems.yaml line 8: poem: the poem has 60,000 characters",
            "the same poem with the same settings as poems.yaml entry 1",
        ):
            assert said in page, said
        assert "root:" not in page  # /etc/passwd was never read
        assert store.zcard("vpsweb:jobs") == 0 and store.zcard(BATCHES) == 0

        csv = b"file,text,target_lang\n,a poem,en\n,another,zh-CN\nx.txt,,\n"
        status, _, page = _submit(tab, [("manifest", "poems.csv", csv)])
        assert status == 422 and "poems.csv row 2" in page and "poems.csv row 4" in page, page
        status, _, page = _submit(tab, [("poem_files", "a.docx", b"PK\x03\x04")])
        assert status == 422 and "a.docx: not a poem file" in page
        status, _, page = _submit(tab, [])
        assert status == 422 and "choose the poem files, or a manifest" in page
        status, _, page = _submit(tab, [("poem_files", "f.txt", b"fog")], parallel_count="99")
        assert status == 422 and "the form&#39;s defaults" in page
        status, _, page = _submit(tab, [("poem_files", "f.txt", b"fog")], budget="lots")
        assert status == 422 and "budget: &#39;lots&#39; is not a number" in page
        glossary = ("glossary_file", "names.yaml", b"fog: [not, text]\n")
        status, _, page = _submit(tab, [("poem_files", "f.txt", b"fog"), glossary])
        assert status == 422 and "names.yaml: line 1" in page, page

        # Bounds: the body (413, before the token is read), the number of files.
        big = [("poem_files", "big.txt", b"x" * (33 * 2**20))]
        status, _, text = _submit(tab, big)
        assert status == 413 and "send the batch in parts" in text
        many = [("poem_files", f"{i}.txt", b"a poem") for i in range(1001)]
        status, _, page = _submit(tab, many)
        assert status == 422 and "1,001 poem files" in page
        status, _, text = tab.post_form("/batches", DEFAULTS)
        assert status == 415 and "multipart/form-data" in text
        assert store.zcard("vpsweb:jobs") == 0 and store.zcard(BATCHES) == 0
    finally:
        web.close()
        c.close()


def test_forged_batch_posts_are_refused_and_the_pages_own_cancel_works(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)  # no worker: the batch stays queued
    web = Web(c, tmp_path)
    try:
        store, tab = c.store, Session(web.url)
        files = [("poem_files", name, data) for name, data in POEMS]
        tab.load("/batches/new")
        fields = {**DEFAULTS, "parallel_count": "8"}
        assert tab.post_multipart("/batches", fields, files, token=False)[0] == 403
        foreign = {"Origin": "http://127.0.0.1:1"}
        status, _, text = tab.post_multipart("/batches", fields, files, headers=foreign)
        assert status == 403 and "another site" in text
        cross = {"Sec-Fetch-Site": "cross-site"}
        assert tab.post_multipart("/batches", fields, files, headers=cross)[0] == 403
        assert Session(web.url).post_multipart("/batches", fields, files, token=False)[0] == 403
        assert tab.request("POST", "/batches", b"poem=x", {"Content-Type": "text/plain"})[0] == 403
        assert store.zcard("vpsweb:jobs") == 0 and store.zcard(BATCHES) == 0

        status, headers, _ = tab.post_multipart("/batches", DEFAULTS, files)
        assert status == 303
        path = headers["Location"]
        assert store.zcard("vpsweb:jobs") == 3
        page = tab.load(path)
        assert 'action="/batches/' in page and 'name="csrf_token"' in page
        # Cancel: refused without the token, or from elsewhere; the poems stay queued.
        assert tab.post_form(f"{path}/cancel", {}, token=False)[0] == 403
        assert tab.post_form(f"{path}/cancel", {}, headers=foreign)[0] == 403
        client = c.client()
        batch = client.batch(path.rsplit("/", 1)[-1])
        assert batch.progress().counts.queued == 3
        status, headers, _ = tab.post_form(f"{path}/cancel", {}, headers={"Origin": web.url})
        assert status == 303 and headers["Location"] == path
        assert batch.progress().counts.cancelled == 3
        messages = _messages(f"{web.url}{path}/events", timeout_s=30)
        assert messages[-1]["summary"]["counts"]["cancelled"] == 3
        assert 'id="cancel-form" hidden' in tab.request("GET", path)[2]
    finally:
        web.close()
        c.close()
