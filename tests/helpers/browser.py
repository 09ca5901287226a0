"""What the browser tests share: waiting for the page, filling the submit form, and
another origin (``Attacker``) for the cross-site attacks."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers.poems import POEM


def wait_for(driver: Any, predicate: Any, timeout: float, what: str) -> Any:
    """``predicate()``'s first truthy value within ``timeout`` seconds, else a test failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout:g}s")


def submit_form(driver: Any, web: Any, *, count: str = "3", poem: str = POEM) -> None:
    """Fill the submit form as a person would (offline) and send it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(web.url + "/")
    driver.find_element(By.ID, "poem").send_keys(poem)
    driver.find_element(By.ID, "title").send_keys("Fog")
    driver.find_element(By.ID, "author").send_keys("Carl Sandburg")
    Select(driver.find_element(By.ID, "source_lang")).select_by_value("en")
    Select(driver.find_element(By.ID, "target_lang")).select_by_value("zh-CN")
    count_box = driver.find_element(By.ID, "parallel_count")
    count_box.clear()
    count_box.send_keys(count)
    driver.find_element(By.NAME, "offline").click()
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


class Attacker:
    """The other origin: serves whatever page a test puts in ``pages``."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "not here").encode()
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
