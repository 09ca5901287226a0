"""The web process over HTTP (no browser): SSE replay, manual answers, auth, refusals.

The browser tests (tests/browser) drive the pages; these pin the endpoints they
use, and the basic-auth and bind rules of `vpsweb web`.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from tests.helpers.web import Web
from tests.helpers.web_session import Session
from vpsweb import settings

pytestmark = pytest.mark.integration


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(tab: Session, path: str, data: dict[str, str]) -> tuple[int, dict]:
    """As the job page's own tab posts: with its cookie and token (vpsweb.web.guard)."""
    status, _, text = tab.post_form(path, data)
    return status, json.loads(text)


def test_events_replay_and_manual_answers_over_http(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    web = None
    try:
        c.add_worker()
        web = Web(c, tmp_path)
        job = c.submit(c.client(), parallel_count=2, manual=["evaluation"])
        c.wait_for(lambda: [p.key for p in job.pending()] == ["evaluation"], 60, "the prompt")
        status, prompts = _get(f"{web.url}/jobs/{job.id}/pending")
        listed = json.loads(prompts)
        assert status == 200 and listed[0]["key"] == "evaluation"
        assert '<candidate id="2">' in listed[0]["text"]
        tab = Session(web.url)
        tab.load(f"/jobs/{job.id}")
        code, bad = _post(tab, f"/jobs/{job.id}/answer", {"key": "evaluation", "text": "hm"})
        assert code == 422 and not bad["ok"] and "selected_index" in bad["error"]
        code, good = _post(
            tab,
            f"/jobs/{job.id}/answer",
            {"key": "evaluation", "text": "<selected_index>1</selected_index>"},
        )
        assert code == 200 and good == {"ok": True, "moved_on": True}
        job.result(timeout=60)
        # Two readers of a finished job get the same whole history, ending in the end.
        first = _get(f"{web.url}/jobs/{job.id}/events")[1]
        second = _get(f"{web.url}/jobs/{job.id}/events")[1]
        events = [json.loads(line[6:]) for line in first.splitlines() if line.startswith("data: ")]
        assert first == second and events[-1]["event"] == "job_finished"
        assert [e["event"] for e in events].count("waiting_for_answer") == 1
        ids = [line[4:] for line in first.splitlines() if line.startswith("id: ")]
        # A reconnecting browser resumes after the last id it saw.
        resumed = _get(f"{web.url}/jobs/{job.id}/events", {"Last-Event-ID": ids[-2]})[1]
        assert resumed.count("data: ") == 1 and "job_finished" in resumed
        assert _get(f"{web.url}/jobs/{job.id}/result.json")[1].startswith("{")
        assert "# " in _get(f"{web.url}/jobs/{job.id}/result.md")[1]
        assert job.id in _get(f"{web.url}/jobs")[1]
        assert _get(f"{web.url}/jobs/0123456789ab")[0] == 404
        assert _get(f"{web.url}/jobs/..%2Fetc")[0] == 404
    finally:
        if web is not None:
            web.close()
        c.close()


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "web", "--redis-url", "redis://127.0.0.1:1/0", *args],
        capture_output=True,
        text=True,
        env=cli_env(env or {}),
        cwd=REPO,
        timeout=30,
    )


def test_no_public_bind_without_credentials_and_no_weak_password() -> None:
    open_public = _serve("--host", "0.0.0.0")
    assert open_public.returncode == 2 and "without credentials" in open_public.stderr
    weak = _serve(
        "--host",
        "0.0.0.0",
        env={settings.WEB_USER_ENV: "admin", settings.WEB_PASSWORD_ENV: "short"},
    )
    assert weak.returncode == 2 and "at least 12" in weak.stderr


def test_basic_auth_guards_every_page(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    password = "correct horse battery"
    env_extra = {settings.WEB_USER_ENV: "ann", settings.WEB_PASSWORD_ENV: password}
    web = Web(c, tmp_path, env=env_extra, auth=("ann", password))
    try:
        for path in ("/", "/jobs", "/static/job.js"):
            assert _get(web.url + path)[0] == 401
        wrong = base64.b64encode(b"ann:wrong").decode()
        assert _get(web.url + "/", {"Authorization": f"Basic {wrong}"})[0] == 401
        right = base64.b64encode(f"ann:{password}".encode()).decode()
        assert _get(web.url + "/", {"Authorization": f"Basic {right}"})[0] == 200
    finally:
        web.close()
        c.close()
