"""The page says, within seconds, that no worker consumes a queue the job needs, and
withdraws it when one comes (the async follower, as the sync one does for the CLI)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.browser import submit_form, wait_for
from tests.helpers.cluster import Cluster
from tests.helpers.web import Web

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def _no_worker_warnings(driver) -> list[str]:
    # One script, not a list of elements: a withdrawn warning's element goes stale.
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#warnings li.no-worker'),"
        " function (li) { return li.textContent; });"
    )


def test_the_page_says_no_worker_then_withdraws_it(tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    cluster = Cluster(tmp=tmp_path, latency_ms=100)  # no worker yet
    server = None
    try:
        server = Web(cluster, tmp_path)
        submit_form(browser, server, count="1")
        wait_for(browser, lambda: "/jobs/" in browser.current_url, 20, "the job page")
        started = time.monotonic()
        said = wait_for(browser, lambda: _no_worker_warnings(browser), 10, "the no-worker warning")
        took = time.monotonic() - started
        assert took < 8, took
        assert len(said) == 1 and "no worker is running against this Redis" in said[0]
        assert "vpsweb.candidates" in said[0] and "vpsweb worker" in said[0]
        assert browser.find_element(By.ID, "warnings").is_displayed()

        cluster.add_worker()
        wait_for(browser, lambda: not _no_worker_warnings(browser), 30, "the warning withdrawn")
        wait_for(
            browser,
            lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
            120,
            "the job's end",
        )
        assert browser.find_element(By.ID, "status").get_attribute("class") == "status-succeeded"
        assert not _no_worker_warnings(browser)
    finally:
        if server is not None:
            server.close()
        cluster.close()
