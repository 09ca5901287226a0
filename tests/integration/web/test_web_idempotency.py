"""The submit form's idempotency key: each page load carries a new one (a hidden
field), so the same page posted twice (a double click, a resubmitted POST after a
dropped connection) makes one job; the page posted again with other text (back, edit,
submit) or a new page makes a new one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.web import Web
from tests.helpers.web_session import Session

pytestmark = pytest.mark.integration

KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')
FORM = {
    "poem": "The fog comes\non little cat feet.",
    "source_lang": "en",
    "target_lang": "zh-CN",
    "parallel_count": "1",
    "offline": "1",
}


def test_a_form_posted_twice_makes_one_job(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)  # no worker: a submitted job stays queued, costs nothing
    web = Web(c, tmp_path)
    try:
        tab = Session(web.url)
        found = KEY.search(tab.load("/"))
        assert found, "no idempotency key on the page"
        form = {**FORM, "idempotency_key": found.group(1)}
        origin = {"Origin": web.url}
        first = tab.post_form("/jobs", form, headers=origin)
        second = tab.post_form("/jobs", form, headers=origin)
        assert first[0] == second[0] == 303
        assert first[1]["Location"] == second[1]["Location"]
        assert c.store.zcard("vpsweb:jobs") == 1
        # A page with errors comes back with the same key (no job was made with it).
        status, _, page = tab.post_form("/jobs", {**form, "source_lang": "xx"}, headers=origin)
        assert status == 422 and found.group(1) in page
        # Back, edit, submit: the same page's key, but another request: another job.
        edited = tab.post_form("/jobs", {**form, "title": "Fog"}, headers=origin)
        assert edited[0] == 303 and edited[1]["Location"] != first[1]["Location"]
        assert c.store.zcard("vpsweb:jobs") == 2
        # A new page: a new key, a new job.
        again = KEY.search(tab.load("/"))
        assert again and again.group(1) != found.group(1)
        third = tab.post_form("/jobs", {**FORM, "idempotency_key": again.group(1)}, headers=origin)
        assert third[0] == 303 and third[1]["Location"] != first[1]["Location"]
        assert c.store.zcard("vpsweb:jobs") == 3
    finally:
        web.close()
        c.close()
