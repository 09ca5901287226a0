"""A cluster, the web process and a headless Chromium, for the browser tests.

On CI (CI=true) a missing Chromium or chromedriver is a failure, not a skip: a
browser test that does not run proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.web import CHROMEDRIVER, WATCH_BAR, Web, chromium_options, serving


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    # Latency that matters: slow enough (0.1-1.3 s a call) for the page to see the bar
    # and the stages move, and for a reload to land mid-run.
    with serving(tmp_path, latency_ms=700, sim_args=("--jitter-ms", "600")) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=chromium_options())
    # Before any page script: record every value the progress bar takes.
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": WATCH_BAR},
    )
    try:
        yield driver
    finally:
        driver.quit()
