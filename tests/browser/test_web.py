"""The web page in a real browser: submit, watch live, reload, field errors, result."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.browser import submit_form, wait_for
from tests.helpers.config import REPO

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

DOCS = REPO / "docs"


def test_submit_and_watch_the_bar_never_move_back(web, browser) -> None:
    from selenium.webdriver.common.by import By

    submit_form(browser, web)
    wait_for(browser, lambda: "/jobs/" in browser.current_url, 20, "the job page")
    wait_for(
        browser,
        lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
        120,
        "the job's end",
    )
    values = browser.execute_script("return window.__bar")
    assert values, "the bar never changed"
    assert values == sorted(values) and values[-1] == 100, values
    assert len(set(values)) == len(values)  # redrawn only when the value changes
    bar = browser.find_element(By.ID, "bar")
    assert (
        bar.get_attribute("role") == "progressbar" and bar.get_attribute("aria-valuenow") == "100"
    )
    stats = browser.execute_script("return window.vpsweb")
    assert 0 < stats["renders"] <= stats["events"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#candidates tr.cand")
    assert len(rows) == 3 and all(
        r.get_attribute("class") in ("cand done", "cand failed") for r in rows
    )
    result = wait_for(browser, lambda: browser.find_element(By.ID, "result").text, 20, "the result")
    for part in ("Final translation", "Judge", "Candidates", "Editor's suggestions", "Totals"):
        assert part in result, part
    assert "agreement across 2 orders" in result
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cand-card")) == 3
    links = [
        a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".downloads a")
    ]
    assert any(h.endswith("/result.json") for h in links) and any(
        h.endswith("/result.md") for h in links
    )
    browser.save_screenshot(str(DOCS / "web-result.png"))


def test_a_reload_mid_run_shows_the_same_state(web, browser) -> None:
    from selenium.webdriver.common.by import By

    submit_form(browser, web, count="4")
    wait_for(browser, lambda: "/jobs/" in browser.current_url, 20, "the job page")

    def done_rows():
        return [
            r.get_attribute("data-index")
            for r in browser.find_elements(
                By.CSS_SELECTOR, "#candidates tr.cand.done, #candidates tr.cand.failed"
            )
        ]

    wait_for(browser, lambda: len(done_rows()) >= 1, 60, "a finished candidate")
    before_rows = set(done_rows())
    before = int(browser.find_element(By.ID, "bar").get_attribute("aria-valuenow"))
    browser.save_screenshot(str(DOCS / "web-job.png"))
    browser.refresh()
    # The replay rebuilds what was shown: nothing is lost, nothing goes back.
    wait_for(browser, lambda: set(done_rows()) >= before_rows, 20, "the replayed candidate rows")
    after = int(browser.find_element(By.ID, "bar").get_attribute("aria-valuenow"))
    assert after >= before
    wait_for(
        browser,
        lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
        120,
        "the job's end",
    )
    values = browser.execute_script("return window.__bar")
    assert values == sorted(values) and values[-1] == 100


def test_an_invalid_form_shows_the_error_beside_the_field(web, browser) -> None:
    from selenium.webdriver.common.by import By

    jobs_before = web.cluster.store.zcard("vpsweb:jobs")
    submit_form(browser, web, count="99")
    error = wait_for(
        browser, lambda: browser.find_elements(By.ID, "parallel_count-error"), 20, "the field error"
    )
    assert "between 1 and 8" in error[0].text
    box = browser.find_element(By.ID, "parallel_count")
    assert box.get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.ID, "poem").get_attribute("value").startswith("The fog comes")
    assert web.cluster.store.zcard("vpsweb:jobs") == jobs_before  # nothing enqueued
    assert Path(DOCS).exists()


def test_a_manual_prompt_is_answered_in_the_page(web, browser) -> None:
    from selenium.webdriver.common.by import By

    job = web.cluster.submit(web.cluster.client(), parallel_count=2, manual=["evaluation"])
    browser.get(f"{web.url}/jobs/{job.id}")
    box = wait_for(
        browser, lambda: browser.find_elements(By.ID, "answer-evaluation"), 60, "the waiting prompt"
    )[0]
    prompt = browser.find_element(By.CSS_SELECTOR, "#prompt-evaluation pre").text
    assert '<candidate id="2">' in prompt
    box.send_keys("The second one, clearly.")
    send = browser.find_element(
        By.XPATH, "//article[@id='prompt-evaluation']//button[text()='Send answer']"
    )
    send.click()
    error = browser.find_element(By.CSS_SELECTOR, "#prompt-evaluation .error")
    wait_for(browser, lambda: "selected_index" in error.text, 20, "the inline error")
    assert [p.key for p in job.pending()] == ["evaluation"]  # nothing changed
    box.clear()
    box.send_keys("<selected_index>2</selected_index><rationale>closer</rationale>")
    send.click()
    wait_for(
        browser,
        lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
        120,
        "the job's end",
    )
    assert (
        job.result(timeout=10).evaluation.selected_index
        == job.result(timeout=10).evaluation.presented_order[1]
    )
