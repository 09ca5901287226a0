"""Late, gated and failed candidates look different on the job page and in the result
(issue 22): the page draws the server's view model (vpsweb.view), so a candidate the
straggler policy stopped is "⏱ late", never "✓ succeeded".

One job of four candidates: the fourth runs on the simulator's 1.5 s model and is
stopped by the quorum (see tests/integration/test_stragglers.py); with the
simulator's planted defects at seed 22, candidate 0 copies the source, so the gates
keep it from the judge while 1 and 2 are judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import wait_for
from tests.helpers.config import slow_fourth
from tests.helpers.poems import POEM
from tests.helpers.web import Web, serving

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

STRAGGLER = {"policy": "quorum", "quorum": 0.75, "grace": 0.5}


@pytest.fixture
def mixed_web(tmp_path: Path) -> Iterator[Web]:
    with serving(
        tmp_path, edit=slow_fourth, sim_args=("--defect-rate", "0.4", "--seed", "22")
    ) as server:
        yield server


def _labels(browser, selector: str) -> dict[str, tuple[str, str]]:
    """index -> (class, status label) of each row or card."""
    from selenium.webdriver.common.by import By

    return {
        el.get_attribute("data-index"): (
            el.get_attribute("class"),
            el.find_element(By.CSS_SELECTOR, ".state").text,
        )
        for el in browser.find_elements(By.CSS_SELECTOR, selector)
    }


def test_late_and_gated_candidates_are_said_as_such_live_and_in_the_result(
    mixed_web, browser
) -> None:
    client = mixed_web.cluster.client()
    request = {
        "poem": POEM,
        "source_lang": "en",
        "target_lang": "zh-CN",
        "title": "Fog",
        "author": "Carl Sandburg",
        "parallel_count": 4,
        "straggler": STRAGGLER,
    }
    (job,) = client.submit_many([request], offline=True)
    browser.get(f"{mixed_web.url}/jobs/{job.id}")
    wait_for(
        browser,
        lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
        120,
        "the job's end",
    )
    out = job.result(timeout=10)
    gated = {str(g.index): "; ".join(g.reasons) for g in out.evaluation.gated}
    assert [c.status for c in out.candidates][3] == "late" and gated, out.evaluation

    rows = _labels(browser, "#candidates tr.cand")
    assert rows["3"] == ("cand late", "⏱ late (stopped: quorum reached)")
    for index, reasons in gated.items():
        assert rows[index] == ("cand gated", f"⊘ gated: {reasons}")
    judged = [i for i in ("0", "1", "2") if i not in gated]
    assert judged and all(rows[i] == ("cand done", "✓ succeeded") for i in judged)

    cards = wait_for(
        browser, lambda: _labels(browser, ".cand-card"), 20, "the result's candidate cards"
    )
    assert cards["3"][1] == "⏱ late (stopped: quorum reached)" and "late" in cards["3"][0]
    for index, reasons in gated.items():
        assert cards[index][1] == f"⊘ gated: {reasons}" and "gated" in cards[index][0]
    assert all(cards[i][1] == "✓ succeeded" for i in judged)

    # A page opened after the end draws the same rows from the replayed views.
    browser.refresh()
    wait_for(
        browser,
        lambda: browser.execute_script("return window.vpsweb && window.vpsweb.ended"),
        30,
        "the replay's end",
    )
    assert _labels(browser, "#candidates tr.cand") == rows
