"""A phone-sized screen and a failed job, in a real Chromium (issue 21).

At 390 px the jobs list was 570 px wide (Cost and Created off screen), and the
result of a job that had failed minutes earlier said "The result has expired".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.config import use_models
from tests.helpers.web import Web

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False}
BOX = """
var r = arguments[0].getBoundingClientRect();
return {right: r.right, shown: r.width > 0 && r.height > 0,
        label: getComputedStyle(arguments[0], '::before').content};
"""
LONG_TITLES = (
    "An Extraordinarily Long Title About The Fog That Comes On Little Cat Feet Over The Harbour",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3,  # one word, no place to break
)


@pytest.fixture
def jobs_web(tmp_path: Path) -> Iterator[tuple[Web, dict[str, str]]]:
    """A web process with a failed, a succeeded and two queued long-titled jobs."""
    cluster = Cluster(tmp=tmp_path, edit=lambda d: use_models(d, editor_review="sim-fail401"))
    try:
        cluster.add_worker()
        client = cluster.client()
        failed = cluster.submit(client, parallel_count=2)  # hybrid: its editor fails
        done = cluster.submit(client, parallel_count=2, workflow_mode="non_reasoning")
        for job in (failed, done):
            cluster.wait_for(lambda j=job: j.status().terminal, 90, f"job {job.id}'s end")
        waiting = [
            cluster.submit(client, parallel_count=2, title=title, manual=True)
            for title in LONG_TITLES
        ]
        server = Web(cluster, tmp_path)
        try:
            yield server, {"failed": failed.id, "succeeded": done.id, "waiting": waiting[0].id}
        finally:
            server.close()
    finally:
        cluster.close()


def test_jobs_list_fits_a_phone_and_a_failed_result_says_why(jobs_web, browser) -> None:
    from selenium.webdriver.common.by import By

    web, ids = jobs_web
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.get(web.url + "/jobs")
    assert browser.execute_script("return window.innerWidth") == 390
    rows = browser.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")
    assert len(rows) == 4
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the jobs list is {width} px wide on a 390 px screen"
    page = browser.find_element(By.TAG_NAME, "body").text
    for shown in ("succeeded", "failed", "CNY", *LONG_TITLES[:1]):
        assert shown in page, shown
    labels = set()
    for cell in browser.find_elements(By.CSS_SELECTOR, "table.jobs td"):
        box = browser.execute_script(BOX, cell)
        assert box["right"] <= 390 and box["shown"], cell.text  # on screen, not hidden
        labels.add(box["label"])
    assert {'"Cost: "', '"Created: "', '"N: "'} <= labels, labels  # columns still named

    browser.get(f"{web.url}/jobs/{ids['failed']}/result")
    said = browser.find_element(By.TAG_NAME, "body").text
    assert "expired" not in said, said
    assert "failed in Editor Review" in said and "401" in said, said
    browser.get(f"{web.url}/jobs/{ids['waiting']}/result")
    said = browser.find_element(By.TAG_NAME, "body").text
    assert said.startswith("No result yet: the job is "), said
