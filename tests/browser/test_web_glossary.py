"""A glossary's flags on the job page, drawn by job.js from the server's view: the
flagged candidate's row keeps "✓ succeeded" and adds its flag (⚑), the page lists the
flags, and the result names them; a page opened after the end draws the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import wait_for
from tests.helpers.config import variant_on
from tests.helpers.poems import POEM
from tests.helpers.web import Web, serving

pytestmark = [pytest.mark.integration, pytest.mark.browser]

RAW = 'glossary: "fog" should be "迷雾" (left untranslated)'


@pytest.fixture
def flagging_web(tmp_path: Path) -> Iterator[Web]:
    """Candidate 1 (its variant on a sim-glossraw model) leaves the terms untranslated."""
    with serving(tmp_path, edit=variant_on(1, "sim-glossraw")) as server:
        yield server


def _texts(browser, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [el.text for el in browser.find_elements(By.CSS_SELECTOR, selector)]


def test_the_flags_are_drawn_live_and_in_the_result(flagging_web: Web, browser) -> None:
    job = flagging_web.cluster.client().submit(
        poem=POEM,
        source_lang="en",
        target_lang="zh-CN",
        parallel_count=3,
        straggler="wait_all",
        glossary={"terms": {"fog": "迷雾"}},
        offline=True,
    )
    for visit in ("live", "replayed"):
        browser.get(f"{flagging_web.url}/jobs/{job.id}")
        wait_for(
            browser,
            lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
            120,
            f"the job's end ({visit})",
        )
        assert _texts(browser, "#flags li") == [f"⚑ candidate #1: {RAW}"], visit
        rows = _texts(browser, '#candidates tr[data-index="1"] .state')
        assert rows == [f"✓ succeeded ⚑ {RAW}"], visit
        flags = wait_for(
            browser, lambda: _texts(browser, ".result-flags li"), 20, "the result's flags"
        )
        assert len(flags) == 1 and flags[0].startswith("⚑ Flag (glossary), candidate #1")
        card = _texts(browser, '.cand-card[data-index="1"] .state')
        assert card == [f"✓ succeeded ⚑ {RAW}"], visit
