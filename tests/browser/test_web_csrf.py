"""Another site attacks a translator's browser: real Chromium, a real second origin.

The attacker's pages come from a second HTTP server on another port of 127.0.0.1
(a different origin, the same site: the case where SameSite cookies do not help).
With basic auth on, the browser first logs in, so its cached credentials ride
along with the forged requests; each refusal is then a 403 from the guard, not
a 401 from the password check, which is what shows the attack was a real one.
The page's own form and Cancel button must still work, and no page may break
its own Content-Security-Policy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import Attacker
from tests.helpers.cluster import Cluster
from tests.helpers.web import Web, chromium_options
from vpsweb import settings
from vpsweb.storage import JobStatus

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
FORGED_FORM = """<!doctype html><title>cute cats</title>
<form id="f" method="post" action="{action}" enctype="multipart/form-data">
<input name="poem" value="spend it all"><input name="source_lang" value="en">
<input name="target_lang" value="zh-CN"><input name="parallel_count" value="8">
<input name="offline" value="1"><input name="csrf_token" value="guessed"></form>
<script>document.getElementById("f").submit();</script>"""
FORGED_FETCH = """<!doctype html><title>cute dogs</title><script>
window.done = 0;
[["{target}/jobs/{job}/cancel", ""], ["{target}/jobs/{job}/answer", "key=evaluation&text=x"],
 ["{target}/jobs", "poem=spend&source_lang=en&target_lang=zh-CN&parallel_count=8&offline=1"]]
  .forEach(function (call) {{
    fetch(call[0], {{method: "POST", mode: "no-cors", credentials: "include", body: call[1],
                    headers: {{"Content-Type": "application/x-www-form-urlencoded"}}}})
      .finally(function () {{ window.done += 1; }});
  }});
</script>"""
FRAMING = """<!doctype html><title>framed</title><iframe src="{target}/"></iframe>"""


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Chromium that logs network responses and console messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.helpers.web import CHROMEDRIVER

    options = chromium_options()
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    try:
        yield server
    finally:
        server.close()


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout:g}s")


_METHODS: dict[str, str] = {}  # request id -> method (a request and its response may
# arrive in different reads of the log)


def _responses(driver: Any) -> list[tuple[str, str, int]]:
    """(method, url, status) of every response since the last call."""
    methods = _METHODS
    found: list[tuple[str, str, int]] = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            methods[params["requestId"]] = params["request"]["method"]
        elif message["method"] == "Network.responseReceived":
            response = params["response"]
            method = methods.get(params["requestId"], "?")
            found.append((method, response["url"], int(response["status"])))
    return found


def _posts(driver: Any, target: str) -> list[tuple[str, int]]:
    return [(u[len(target) :], s) for m, u, s in _responses(driver) if m == "POST"]


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "basic-auth"])
def test_another_origin_can_neither_submit_nor_cancel(
    auth: bool, tmp_path: Path, chromium: Any, attacker: Attacker
) -> None:
    from selenium.webdriver.common.by import By

    cluster = Cluster(tmp=tmp_path)  # no worker: jobs stay queued, nothing is spent
    env = {settings.WEB_USER_ENV: "ann", settings.WEB_PASSWORD_ENV: PASSWORD} if auth else {}
    web = Web(cluster, tmp_path, env=env, auth=("ann", PASSWORD) if auth else None)
    target = web.url
    try:
        if auth:  # log in once, as a translator does; the browser caches the credentials
            chromium.get(target.replace("http://", f"http://ann:{PASSWORD.replace(' ', '%20')}@"))
        # The page's own form, under its CSP, with its token: a job.
        chromium.get(target + "/")
        chromium.find_element(By.ID, "poem").send_keys("The fog comes\non little cat feet.")
        chromium.find_element(By.ID, "parallel_count").send_keys("1")
        chromium.find_element(By.NAME, "offline").click()
        chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        _wait(lambda: "/jobs/" in chromium.current_url, 20, "the job page")
        job_id = chromium.current_url.rsplit("/", 1)[1]
        store = cluster.store
        assert store.zcard("vpsweb:jobs") == 1
        _responses(chromium)

        # 1. An auto-submitting form on the other origin: refused, nothing enqueued.
        attacker.pages["/form"] = FORGED_FORM.format(action=f"{target}/jobs")
        attacker.pages["/cancel"] = FORGED_FORM.format(action=f"{target}/jobs/{job_id}/cancel")
        for page in ("/form", "/cancel"):
            chromium.get(attacker.url + page)
            _wait(lambda: "refused" in chromium.page_source, 20, f"the refusal of {page}")
            assert "another site" in chromium.find_element(By.TAG_NAME, "body").text
        posts = _posts(chromium, target)
        assert posts == [("/jobs", 403), (f"/jobs/{job_id}/cancel", 403)], posts

        # 2. fetch() from the other origin, with credentials: refused, nothing changed.
        attacker.pages["/fetch"] = FORGED_FETCH.format(target=target, job=job_id)
        chromium.get(attacker.url + "/fetch")
        _wait(lambda: chromium.execute_script("return window.done") == 3, 20, "the fetches")
        posts = sorted(_posts(chromium, target))
        assert posts == sorted(
            [(f"/jobs/{job_id}/cancel", 403), (f"/jobs/{job_id}/answer", 403), ("/jobs", 403)]
        ), posts
        assert store.zcard("vpsweb:jobs") == 1
        client = cluster.client()
        assert client.get(job_id).status() == JobStatus.QUEUED

        # 3. Framing: the page refuses to render inside another site.
        attacker.pages["/frame"] = FRAMING.format(target=target)
        chromium.get(attacker.url + "/frame")
        _wait(
            lambda: any("frame-ancestors" in e["message"] for e in chromium.get_log("browser")),
            20,
            "the framing refusal in the console",
        )

        # 4. The page's own Cancel button (a fetch with its token) still works.
        chromium.get(f"{target}/jobs/{job_id}")
        chromium.find_element(By.ID, "cancel").click()
        seen: list[tuple[str, int]] = []

        def answered() -> bool:
            seen.extend(_posts(chromium, target))
            return bool(seen)

        _wait(answered, 20, "the own cancel's answer")
        assert seen == [(f"/jobs/{job_id}/cancel", 200)], seen
        assert client.get(job_id).status() == JobStatus.CANCELLED
        # None of our pages broke its own Content-Security-Policy.
        console = [e["message"] for e in chromium.get_log("browser")]
        assert not [m for m in console if "Content Security Policy" in m], console
    finally:
        web.close()
        cluster.close()
