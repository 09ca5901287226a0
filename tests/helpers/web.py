"""The `vpsweb web` process and headless Chromium's options, for web and browser tests."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import cli_env
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from vpsweb import settings
from vpsweb.local.processes import free_port, stop_process

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        why = f"not installed: {', '.join(missing)} (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


class Web:
    def __init__(
        self,
        cluster: Cluster,
        tmp: Path,
        env: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = cli_env({settings.CONFIG_DIR_ENV: str(cluster.config_dir), **(env or {})})
        headers = {}
        if auth is not None:
            token = base64.b64encode(":".join(auth).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.log = tmp / "web.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vpsweb.cli",
                "web",
                "--port",
                str(self.port),
                "--redis-url",
                cluster.redis.url,
            ],
            env=env,
            cwd=REPO,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(self.url + "/", headers=headers)
                urllib.request.urlopen(request, timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"vpsweb web did not start: {self.log.read_text()}"
                    ) from None
                time.sleep(0.2)

    def close(self) -> None:
        stop_process(self.proc, grace_s=5)


def chromium_options() -> Any:
    """Headless Chromium's options (after checking it is installed)."""
    require_browser()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,1600",
    ):
        options.add_argument(flag)
    return options


WATCH_BAR = """
window.__bar = [];
new MutationObserver(function (records) {
  records.forEach(function (r) {
    if (r.target.id === 'bar' && r.attributeName === 'aria-valuenow') {
      window.__bar.push(Number(r.target.getAttribute('aria-valuenow')));
    }
  });
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['aria-valuenow']});
"""


@contextmanager
def serving(tmp_path: Path, **cluster_options: Any) -> Iterator[Web]:
    """A Cluster (``cluster_options``) with one worker, and the web page on it; both
    closed after."""
    cluster = Cluster(tmp=tmp_path, **cluster_options)
    try:
        cluster.add_worker()
        server = Web(cluster, tmp_path)
        try:
            yield server
        finally:
            server.close()
    finally:
        cluster.close()
