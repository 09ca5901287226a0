"""The batch pages in a real headless Chromium: a collection uploaded as a translator
would (poem files chosen in the file input), followed live to its end, each row
leading to its job page, the anthology opened; a bad manifest shown problem by
problem with nothing enqueued; another origin refused on the form and on cancel.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import Attacker, wait_for
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from tests.helpers.web import Web

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

POEMS = {
    "01_fog.txt": "The fog comes\non little cat feet.\n",
    "02_grass.txt": "Pile the bodies high at Austerlitz and Waterloo.\nShovel them under.\n",
    "03_window.txt": "Night from a railroad car window\nis a great, dark, soft thing.\n",
}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False}
RIGHT_EDGES = """
return Array.from(document.querySelectorAll('#poems td, #counts .count, .downloads a'))
  .map(function (e) { return e.getBoundingClientRect().right; });"""
BAD_MANIFEST = """poems:
  - file: 01_fog.txt
  - file: nowhere.txt
  - file: /etc/passwd
  - {text: a poem, target_lang: xx}
"""
FORGED = """<!doctype html><title>cute cats</title>
<form id="f" method="post" action="{action}" enctype="multipart/form-data">
<input name="source_lang" value="en"><input name="target_lang" value="zh-CN">
<input name="parallel_count" value="8"><input name="csrf_token" value="guessed"></form>
<script>document.getElementById("f").submit();</script>"""


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    try:
        yield server
    finally:
        server.close()


def _choose(browser: Any, web: Web, files: list[Path], *, manifest: Path | None = None) -> None:
    """The batch form filled as a person does (offline, one candidate each), and sent."""
    from selenium.webdriver.common.by import By

    browser.get(web.url + "/batches/new")
    if files:  # several files in one input: their paths one per line
        browser.find_element(By.ID, "poem_files").send_keys("\n".join(str(f) for f in files))
    if manifest is not None:
        browser.find_element(By.ID, "manifest").send_keys(str(manifest))
    browser.find_element(By.ID, "parallel_count").send_keys("1")
    browser.find_element(By.NAME, "offline").click()
    browser.find_element(By.CSS_SELECTOR, "#batch-form button[type=submit]").click()


def _write(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    folder = tmp_path / "poems"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]


def test_a_collection_runs_live_and_opens_its_anthology(
    web: Web, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    _choose(browser, web, _write(tmp_path, POEMS))
    wait_for(browser, lambda: "/batches/" in browser.current_url, 30, "the batch page")
    batch_url = browser.current_url
    wait_for(browser, lambda: browser.execute_script("return window.vpsweb.ended"), 180, "the end")
    values = browser.execute_script("return window.__bar")
    assert values == sorted(values) and values[-1] == 100, values  # never back
    count = browser.find_element(By.CSS_SELECTOR, 'dd[data-count="succeeded"]')
    assert count.text == "3"
    assert browser.find_element(By.ID, "eta").text == "done"
    assert "CNY" in browser.find_element(By.ID, "cost").text
    assert browser.find_element(By.ID, "cancel-form").get_attribute("hidden") is not None
    rows = browser.find_elements(By.CSS_SELECTOR, "#poems tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, ".state").text for r in rows] == ["✓ succeeded"] * 3
    wait_for(
        browser,
        lambda: all("CNY" in r.find_element(By.CSS_SELECTOR, ".cost").text for r in rows),
        20,
        "every poem's cost",
    )
    browser.save_screenshot(str(REPO / "docs" / "web-batch.png"))

    # On a phone (390 px) every count and every cell of the poems' table is on screen.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.refresh()
    wait_for(browser, lambda: browser.execute_script("return window.vpsweb.ended"), 30, "again")
    boxes = browser.execute_script(RIGHT_EDGES)
    assert boxes and max(boxes) <= PHONE["width"], boxes
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # A row leads to its poem's job page.
    rows = browser.find_elements(By.CSS_SELECTOR, "#poems tbody tr")
    link = rows[1].find_element(By.TAG_NAME, "a")
    job_href = link.get_attribute("href")
    link.click()
    wait_for(browser, lambda: browser.current_url == job_href, 20, "the job page")
    wait_for(browser, lambda: "Final translation" in browser.page_source, 30, "the result")
    assert "Pile the bodies high" in browser.page_source

    # The anthology opens (its own policy: styles, no script), every poem in it.
    browser.get(batch_url)
    browser.find_element(By.CSS_SELECTOR, 'a[data-file="anthology.html"]').click()
    wait_for(browser, lambda: browser.current_url.endswith("/anthology.html"), 20, "anthology")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "3 poems from English into Simplified Chinese: 3 translated" in text, text[:400]
    for line in ("The fog comes", "Pile the bodies high", "Night from a railroad car"):
        assert line in text, line
    toc = browser.find_elements(By.CSS_SELECTOR, "nav.toc a")
    assert len(toc) == 3
    # No page broke its Content-Security-Policy (an inline style or script would).
    console = [e["message"] for e in browser.get_log("browser")]
    assert not [m for m in console if "Content Security Policy" in m], console


def test_a_bad_manifest_shows_every_problem_and_enqueues_nothing(
    web: Web, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    files = _write(tmp_path, {"01_fog.txt": POEMS["01_fog.txt"]})
    manifest = tmp_path / "poems.yaml"
    manifest.write_text(BAD_MANIFEST, encoding="utf-8")
    _choose(browser, web, files, manifest=manifest)
    box = wait_for(
        browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#problems li"), 30, "problems"
    )
    said = [li.text for li in box]
    assert len(said) == 3, said
    assert said[0].startswith("poems.yaml line 3: nowhere.txt: no uploaded file")
    assert said[1].startswith("poems.yaml line 4: /etc/passwd: a manifest sent from the web")
    assert said[2].startswith("poems.yaml line 5: target_lang: unsupported target language")
    assert "/batches/new" not in browser.current_url  # the form again, at POST /batches
    assert web.cluster.store.zcard("vpsweb:jobs") == 0
    assert web.cluster.store.zcard("vpsweb:batches") == 0


def test_another_origin_can_neither_submit_a_batch_nor_cancel_one(
    tmp_path: Path, browser: Any, attacker: Attacker
) -> None:
    from selenium.webdriver.common.by import By

    cluster = Cluster(tmp=tmp_path)  # no worker: the batch stays queued, nothing is spent
    web = Web(cluster, tmp_path)
    try:
        _choose(browser, web, _write(tmp_path, POEMS))
        wait_for(browser, lambda: "/batches/" in browser.current_url, 30, "the batch page")
        path = browser.current_url[len(web.url) :]
        store = cluster.store
        assert store.zcard("vpsweb:jobs") == 3 and store.zcard("vpsweb:batches") == 1

        attacker.pages["/form"] = FORGED.format(action=f"{web.url}/batches")
        attacker.pages["/cancel"] = FORGED.format(action=f"{web.url}{path}/cancel")
        for page in ("/form", "/cancel"):
            browser.get(attacker.url + page)
            wait_for(browser, lambda: "refused" in browser.page_source, 20, f"refusal of {page}")
            assert "another site" in browser.find_element(By.TAG_NAME, "body").text
        assert store.zcard("vpsweb:jobs") == 3 and store.zcard("vpsweb:batches") == 1
        batch = cluster.client().batch(path.rsplit("/", 1)[-1])
        assert batch.progress().counts.queued == 3

        # The page's own Cancel button (its form, with its token) works.
        browser.get(web.url + path)
        browser.find_element(By.ID, "cancel").click()
        wait_for(
            browser,
            lambda: browser.find_element(By.CSS_SELECTOR, 'dd[data-count="cancelled"]').text == "3",
            30,
            "the cancelled count",
        )
        assert batch.progress().counts.cancelled == 3
    finally:
        web.close()
        cluster.close()
