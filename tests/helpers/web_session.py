"""An HTTP client of `vpsweb web` that behaves as the page's own browser tab does:
it keeps the CSRF cookie and sends the token a page carries (see vpsweb.web.guard)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

TOKEN = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 303 is an answer the tests look at, not a page to follow


class Session:
    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.headers = headers or {}
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.token = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers={**self.headers, **(headers or {})}
        )
        try:
            with self.opener.open(request, timeout=30) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def load(self, path: str = "/") -> str:
        """GET a page (the cookie arrives with it) and keep the token it carries."""
        status, _, html = self.request("GET", path)
        assert status == 200, (status, html)
        found = TOKEN.search(html)
        assert found, "no csrf-token meta tag"
        self.token = found.group(1)
        return html

    def post_form(
        self,
        path: str,
        data: dict[str, str],
        *,
        token: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """A urlencoded form, with the page's token field unless ``token`` is False."""
        fields = {**data, "csrf_token": self.token} if token else data
        body = urllib.parse.urlencode(fields).encode()
        kind = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", path, body, {**kind, **(headers or {})})

    def post_multipart(
        self,
        path: str,
        data: dict[str, str],
        files: dict[str, tuple[str, bytes]] | list[tuple[str, str, bytes]],
        *,
        token: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """A multipart form as a browser posts it: fields, the page's token (unless
        ``token`` is False), and files: field -> (filename, bytes), or a list of
        (field, filename, bytes) where a field may repeat (``<input multiple>``)."""
        boundary = f"----vpsweb{uuid.uuid4().hex}"
        parts: list[bytes] = []
        fields = {**data, "csrf_token": self.token} if token else data
        for name, value in fields.items():
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            parts.append(head.encode() + value.encode() + b"\r\n")
        uploads = [(n, f, c) for n, (f, c) in files.items()] if isinstance(files, dict) else files
        for name, filename, content in uploads:
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            )
            parts.append(head.encode() + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", path, body, {**kind, **(headers or {})})

    def post_json(
        self, path: str, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        kind = {"Content-Type": "application/json", **(headers or {})}
        status, _, text = self.request("POST", path, json.dumps(data).encode(), kind)
        return status, text
