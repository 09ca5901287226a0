"""The web form's glossary (a file upload or the text box, and its mode) on a real
cluster: the job carries it, a planted miss (candidate 1's variant on a
``sim-glossraw`` model) is flagged in the page's event stream view and its result;
a bad glossary is refused beside its field, every line named, nothing enqueued."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.config import variant_on
from tests.helpers.poems import FOG
from tests.helpers.web import Web
from tests.helpers.web_session import Session

pytestmark = pytest.mark.integration

FORM = {
    "poem": FOG,
    "source_lang": "en",
    "target_lang": "zh-CN",
    "parallel_count": "3",
    "straggler": "wait_all",
    "offline": "1",
}
RAW = 'glossary: "fog" should be "迷雾" (left untranslated)'


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def test_the_form_takes_a_glossary_and_the_page_shows_its_flags(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, edit=variant_on(1, "sim-glossraw"))
    web = None
    try:
        c.add_worker()
        web = Web(c, tmp_path)
        tab = Session(web.url)
        page = tab.load("/")
        assert 'name="glossary_file"' in page and 'name="glossary_mode"' in page
        terms = "source,target,note\nfog,迷雾,not 雾\nharbor,港湾,\ncity,城市,\n"
        upload = {"glossary_file": ("terms.csv", terms.encode("gb18030"))}
        status, headers, _ = tab.post_multipart("/jobs", {**FORM, "glossary_mode": "flag"}, upload)
        assert status == 303, _
        job_path = headers["Location"]
        job = c.client().get(job_path.rsplit("/", 1)[1])
        out = job.result(timeout=90)
        glossary = out.request.glossary
        assert glossary is not None and glossary.mode == "flag" and len(glossary.terms) == 3
        assert ("candidate #1", RAW) in [(f.where, f.message) for f in out.flags]
        # The page's stream carries the view job.js draws: the flag, and the candidate's.
        stream = _get(f"{web.url}{job_path}/events")
        views = [
            json.loads(line[6:])["view"]
            for line in stream.splitlines()
            if line.startswith("data: ")
        ]
        last = views[-1]
        assert any(f.startswith(f"candidate #1: {RAW}") for f in last["flags"])
        assert last["candidates"][1]["label"].startswith(f"✓ succeeded ⚑ {RAW}")
        result = _get(f"{web.url}{job_path}/result")
        assert "⚑ Flag (glossary), candidate #1" in result
        # Strict, from the text box: the candidate is gated before judging.
        text = {"glossary": "fog: 迷雾\n", "glossary_mode": "strict"}
        status, headers, _ = tab.post_form("/jobs", {**FORM, **text})
        assert status == 303
        strict = c.client().get(headers["Location"].rsplit("/", 1)[1]).result(timeout=90)
        assert [(g.index, g.reasons) for g in strict.evaluation.gated] == [(1, [RAW])]
    finally:
        if web is not None:
            web.close()
        c.close()


def test_a_bad_glossary_is_said_beside_its_field_and_nothing_is_enqueued(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    web = None
    try:
        web = Web(c, tmp_path)
        tab = Session(web.url)
        tab.load("/")
        bad = {"glossary": "fog: 迷雾\nharbor:\ncity: {target: 城市, colour: grey}\n"}
        status, _, page = tab.post_form("/jobs", {**FORM, **bad})
        assert status == 422
        assert 'id="glossary-error"' in page and 'aria-describedby="glossary-error"' in page
        assert "line 2: &#39;harbor&#39; has no target" in page
        assert "line 3: unknown field &#39;colour&#39;" in page
        assert "harbor:" in page  # the text is kept for the fix
        status, _, page = tab.post_multipart(
            "/jobs", FORM, {"glossary_file": ("t.csv", b"source;target\n")}
        )
        assert status == 422 and "no terms" in page
        # The poem's upload shares the path: its problem is said beside the poem.
        png = {"poem_file": ("poem.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\xff\xfe")}
        status, _, page = tab.post_multipart("/jobs", {**FORM, "poem": ""}, png)
        assert status == 422 and 'id="poem-error"' in page and "poem.png: " in page
        # A glossary file that cannot be read is refused, not left out.
        status, _, page = tab.post_multipart(
            "/jobs", FORM, {"glossary_file": ("g.csv", png["poem_file"][1])}
        )
        assert status == 422 and 'id="glossary-error"' in page and "g.csv: " in page
        assert c.client().recent() == []
    finally:
        if web is not None:
            web.close()
        c.close()
