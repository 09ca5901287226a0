"""The batch's anthology opened in a real headless Chromium (issue 24: "the anthology's
HTML opened in headless Chromium").

The file is what ``write_batch_outputs`` writes for whole jobs run in-process, with
markup planted in the titles, the poet, the source and the translation, and opened
from disk (file://) as a translator would open it: its contents lead to every poem,
the source and the translation stand side by side on a desktop and stack on a
phone, no planted script runs, and printing puts each poem on a page of its own.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.helpers.anthology import HOSTILE_POET, HOSTILE_TITLE, SCRIPT, long_poem, sample_batch
from vpsweb.batches.outputs import write_batch_outputs

pytestmark = [pytest.mark.integration, pytest.mark.browser]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False}
TITLE = f'Tang poems {SCRIPT} "selected"'
# Each translated poem: its source and translation boxes, and the poem's print styles.
POEMS = """
return Array.from(document.querySelectorAll('article.poem')).map(function (a) {
  var s = a.querySelector('.source .verse'), t = a.querySelector('.target .verse');
  var box = function (e) { var r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; };
  var style = getComputedStyle(a);
  return {id: a.id, missing: a.classList.contains('missing'),
          source: s && box(s), target: t && box(t),
          breakBefore: style.breakBefore, breakInside: style.breakInside,
          pair: s ? getComputedStyle(s.parentNode.parentNode).display : '',
          columns: s ? getComputedStyle(s.parentNode.parentNode).gridTemplateColumns : ''};
});
"""
LINKS = """
return Array.from(document.querySelectorAll('nav.toc a')).map(function (a) {
  var target = document.getElementById(decodeURIComponent(a.hash.slice(1)));
  return {hash: a.hash, text: a.textContent, target: target && target.tagName,
          heading: target && target.querySelector('h2').textContent};
});
"""


def pages(browser) -> int:
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {})["data"])
    return len(re.findall(rb"/Type\s*/Page\b", pdf))  # /Page, not /Pages


@pytest.fixture
def anthology(tmp_path: Path) -> Path:
    items = sample_batch()
    # A name made from a Chinese file name: its anchor is not ASCII.
    items[3] = items[3].model_copy(update={"name": "孟浩然-春晓"})
    write_batch_outputs(tmp_path, [*items, long_poem()], title=TITLE)
    return tmp_path / "anthology.html"


def test_contents_lead_to_every_poem_and_no_planted_script_runs(anthology, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(anthology.as_uri())
    assert browser.title == TITLE
    links = browser.execute_script(LINKS)
    assert [link["hash"] for link in links] == [
        "#poem-li-bai-jing-ye-si",
        "#poem-du-fu-chun-wang",
        "#poem-wang-wei",
        "#poem-%E5%AD%9F%E6%B5%A9%E7%84%B6-%E6%98%A5%E6%99%93",
        "#poem-long-poem",
    ]
    for link in links:
        assert link["target"] == "ARTICLE" and link["text"] in link["heading"], link
    # Following a link brings its poem to the top of the window.
    for number, poem in ((2, "poem-du-fu-chun-wang"), (4, "poem-孟浩然-春晓")):
        browser.find_element(By.CSS_SELECTOR, f"nav.toc li:nth-child({number}) a").click()
        top = browser.execute_script(
            "return document.getElementById(arguments[0]).getBoundingClientRect().top", poem
        )
        assert abs(top) <= 2, (poem, top)
        assert browser.execute_script("return location.hash") == links[number - 1]["hash"]
    # Shown as text, and nothing of it ran or was made an element.
    assert browser.execute_script("return window.__ran === undefined")
    assert browser.execute_script("return document.querySelectorAll('script, img, b').length") == 0
    heading = browser.find_element(By.CSS_SELECTOR, "#poem-du-fu-chun-wang h2").text
    assert HOSTILE_TITLE in heading
    assert HOSTILE_POET in browser.find_element(By.CSS_SELECTOR, "#poem-du-fu-chun-wang").text
    assert browser.find_element(By.TAG_NAME, "h1").text == TITLE
    cause = browser.find_element(By.CSS_SELECTOR, "#poem-wang-wei .status").text
    assert cause.startswith("Not translated: the job failed: Editor Review failed: HTTP 401")


def test_source_and_translation_side_by_side_then_stacked_on_a_phone(anthology, browser) -> None:
    browser.get(anthology.as_uri())
    poems = [p for p in browser.execute_script(POEMS) if not p["missing"]]
    assert [p["id"] for p in poems] == [
        "poem-li-bai-jing-ye-si",
        "poem-du-fu-chun-wang",
        "poem-long-poem",
    ]
    for p in poems:
        source, target = p["source"], p["target"]
        assert source["right"] <= target["left"], p  # the source left, the translation right
        assert abs(source["top"] - target["top"]) <= 2, p  # their first lines level
        assert source["width"] > 300 and target["width"] > 300, p
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.get(anthology.as_uri())
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    for p in (p for p in browser.execute_script(POEMS) if not p["missing"]):
        source, target = p["source"], p["target"]
        assert target["top"] >= source["bottom"], p  # the translation under the source
        assert abs(source["left"] - target["left"]) <= 1 and target["right"] <= 390, p


def test_printing_puts_each_poem_on_a_page_of_its_own(anthology, browser, tmp_path) -> None:
    browser.get(anthology.as_uri())
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    for p in browser.execute_script(POEMS):
        if p["missing"]:  # a line saying why: it follows the poem before it
            assert p["breakBefore"] == "auto", p
        else:
            assert (p["breakBefore"], p["breakInside"]) == ("page", "avoid"), p
            # Side by side on paper too (a grid's columns resolve to two widths).
            assert p["pair"] == "grid" and len(p["columns"].split()) == 2, p
    cover = "return getComputedStyle(document.querySelector('header.cover')).breakAfter"
    assert browser.execute_script(cover) == "page"  # the contents on the first page
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    # The contents, then one page per short poem (the failed and the cancelled one
    # follow the second); the long poem runs over pages of its own as it must.
    long_pages = pages(browser) - 3
    short = tmp_path / "short"
    write_batch_outputs(short, sample_batch(), title="Short poems")
    browser.get((short / "anthology.html").as_uri())
    assert pages(browser) == 3
    assert long_pages >= 2, long_pages
