"""`vpsweb web` over real HTTP: what a forged or foreign request can do (nothing), what
the page's own requests can do (everything they did), the headers on every page,
and the configurations that must not start.

The browser's side of the same attack (a real cross-origin form and fetch) is in
tests/browser/test_web_csrf.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env, one_line
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from tests.helpers.web import Web
from tests.helpers.web_session import Session
from vpsweb import settings
from vpsweb.local.processes import free_port

pytestmark = pytest.mark.integration

FORM = {
    "poem": "The fog comes\non little cat feet.",
    "source_lang": "en",
    "target_lang": "zh-CN",
    "parallel_count": "1",
    "offline": "1",
}
HTML_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _assert_guarded(headers: dict[str, str], what: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    for part in ("default-src 'self'", "frame-ancestors 'none'", "form-action 'self'"):
        assert part in csp, (what, csp)
    assert "unsafe-inline" not in csp, what
    for name, value in HTML_HEADERS.items():
        assert headers.get(name) == value, (what, name, headers.get(name))


def test_forged_posts_change_nothing_and_the_pages_own_posts_work(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)  # no worker: a submitted job stays queued, costs nothing
    web = Web(c, tmp_path)
    try:
        store = c.store
        tab = Session(web.url)
        tab.load("/")
        # Without the token (a stranger's form, curl with no cookie): refused, nothing enqueued.
        status, _, text = Session(web.url).post_form("/jobs", FORM, token=False)
        assert status == 403 and "reload the page" in text
        assert tab.post_form("/jobs", FORM, token=False)[0] == 403
        assert tab.post_form("/jobs", {**FORM, "csrf_token": "0" * 64}, token=False)[0] == 403
        # The token, but from another origin (a page elsewhere that somehow has it): refused.
        status, _, text = tab.post_form("/jobs", FORM, headers={"Origin": "http://127.0.0.1:1"})
        assert status == 403 and "another site" in text
        assert tab.post_form("/jobs", FORM, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
        # A form with enctype=text/plain, the other classic forgery: refused before parsing.
        assert tab.request("POST", "/jobs", b"poem=x", {"Content-Type": "text/plain"})[0] == 403
        assert store.zcard("vpsweb:jobs") == 0

        # JSON with a valid token: a clear 415, not a 500; nothing enqueued.
        status, text = tab.post_json("/jobs", FORM, {"X-CSRF-Token": tab.token})
        assert status == 415 and "multipart/form-data" in text
        assert tab.post_json("/jobs", FORM)[0] == 403  # and without one: refused first
        broken = {"Content-Type": "multipart/form-data", "X-CSRF-Token": tab.token}
        assert tab.request("POST", "/jobs", b"--x\r\n", broken)[0] == 400
        assert store.zcard("vpsweb:jobs") == 0

        # The page's own urlencoded form (same origin, with token): accepted.
        origin = {"Origin": web.url}
        status, headers, _ = tab.post_form("/jobs", FORM, headers=origin)
        assert status == 303 and headers["Location"].startswith("/jobs/"), (status, headers)
        job_path = headers["Location"]
        assert store.zcard("vpsweb:jobs") == 1

        # Cancel: refused without the token or from elsewhere; the job is still queued.
        assert tab.request("POST", job_path + "/cancel")[0] == 403
        foreign = {"X-CSRF-Token": tab.token, "Origin": "http://localhost:1"}
        assert tab.request("POST", job_path + "/cancel", b"", foreign)[0] == 403
        assert (
            tab.post_form(job_path + "/answer", {"key": "evaluation", "text": "x"}, token=False)[0]
            == 403
        )
        status, _, page = tab.request("GET", job_path)
        assert status == 200 and 'class="status-queued"' in page
        own = {"X-CSRF-Token": tab.token, **origin}
        status, _, text = tab.request("POST", job_path + "/cancel", b"", own)
        assert status == 200 and '"cancelled": true' in text

        # Every HTML page (and an error page, and a script) carries the headers.
        for path in ("/", "/jobs", job_path, "/jobs/0123456789ab", "/static/job.js"):
            _assert_guarded(tab.request("GET", path)[1], path)
        for path in ("/", job_path):
            assert 'style="' not in tab.request("GET", path)[2], path  # the CSP forbids it
    finally:
        web.close()
        c.close()


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "web", "--redis-url", "redis://127.0.0.1:1/0", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=REPO,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (settings.WEB_USER_ENV, settings.WEB_PASSWORD_ENV),
        (settings.WEB_PASSWORD_ENV, settings.WEB_USER_ENV),
    ],
)
def test_half_a_credential_pair_does_not_start_an_open_page(given: str, missing: str) -> None:
    """It used to start with no authentication at all, silently."""
    # Before the fix this served (on a free port, until the timeout) instead of failing.
    line = one_line(_serve({given: "ann-correct-horse-battery"}, "--port", str(free_port())), 2)
    assert f"{given} is set but {missing} is not" in line


def test_a_bad_trusted_origin_does_not_start() -> None:
    env = {settings.WEB_ORIGINS_ENV: "https://poems.example.org,poems.example.org/app"}
    line = one_line(_serve(env), 2)
    assert settings.WEB_ORIGINS_ENV in line and "'poems.example.org/app' is not an origin" in line
