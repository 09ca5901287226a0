"""The web page's CSRF guard and security headers, on a tiny aiohttp app (no services).

The real page is checked over HTTP in tests/integration/test_web_security.py and
in Chromium in tests/browser/test_web_csrf.py; these pin each rule quickly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vpsweb.errors import ConfigError
from vpsweb.web.guard import COOKIE, CSP, FIELD, HEADER, Guard, normalize_origin, parse_origins


def _app(guard: Guard) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=guard.token(request), content_type="text/html")

    async def change(request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response({"changed": True, "fields": sorted(form)})

    app = web.Application(middlewares=[guard.middleware()])
    app.on_response_prepare.append(guard.on_prepare)
    app.add_routes([web.get("/", page), web.post("/change", change)])
    return app


def _run(guard: Guard, body: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(_app(guard), host="127.0.0.1")) as client:
            await body(client)

    asyncio.run(main())


async def _token(client: TestClient[Any, Any]) -> str:
    response = await client.get("/")
    return await response.text()


def test_a_post_needs_the_token_of_its_own_cookie() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        assert (await client.post("/change", data={"a": "1"})).status == 403
        token = await _token(client)
        ok = await client.post("/change", data={"a": "1"}, headers={HEADER: token})
        assert ok.status == 200 and (await ok.json())["changed"]
        as_field = await client.post("/change", data={"a": "1", FIELD: token})
        assert as_field.status == 200 and (await as_field.json())["fields"] == ["a", FIELD]
        other = "1" if token.endswith("0") else "0"  # a token that differs, always
        wrong = await client.post("/change", data={FIELD: token[:-1] + other})
        assert wrong.status == 403 and "reload the page" in await wrong.text()
        # Another port of the same host can set our cookie (cookies ignore ports):
        # a nonce of its choosing is useless without the server's secret.
        jar = client.session.cookie_jar
        jar.clear()
        jar.update_cookies({COOKIE: "attacker-chosen-nonce-0123456789"}, client.make_url("/"))
        assert (await client.post("/change", headers={HEADER: token})).status == 403

    _run(Guard(), body)


def test_a_post_from_another_origin_is_refused_even_with_the_token() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        token = await _token(client)
        own = f"http://127.0.0.1:{client.port}"
        for headers in (
            {"Origin": "http://127.0.0.1:1"},
            {"Origin": "null"},
            {"Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            refused = await client.post("/change", headers={HEADER: token, **headers})
            assert refused.status == 403, headers
            assert "another site" in await refused.text()
        for headers in ({"Origin": own}, {"Sec-Fetch-Site": "same-origin"}, {}):
            assert (await client.post("/change", headers={HEADER: token, **headers})).status == 200
        trusted = {HEADER: token, "Origin": "https://poems.example.org"}
        assert (await client.post("/change", headers=trusted)).status == 200

    _run(Guard(parse_origins("https://poems.example.org")), body)


def test_a_loopback_server_refuses_foreign_host_names() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        rebound = await client.get("/", headers={"Host": f"rebind.example:{client.port}"})
        assert rebound.status == 421 and "unexpected Host" in await rebound.text()
        for host in ("localhost", "127.0.0.1", "[::1]", "poems.example.org"):
            assert (await client.get("/", headers={"Host": f"{host}:{client.port}"})).status == 200

    _run(Guard(parse_origins("https://poems.example.org"), loopback_only=True), body)


def test_every_response_has_the_security_headers_and_the_cookie_is_guarded() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        page = await client.get("/")
        cookie = page.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Set-Cookie" not in (await client.get("/")).headers  # one nonce per browser
        for response in (page, await client.get("/missing"), await client.post("/change")):
            headers = response.headers
            assert headers["Content-Security-Policy"] == CSP, response.status
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "same-origin"
        for part in ("frame-ancestors 'none'", "form-action 'self'", "script-src 'self'"):
            assert part in CSP
        assert "unsafe-inline" not in CSP

    _run(Guard(), body)


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://Poems.Example.org", "https://poems.example.org"),
        ("https://poems.example.org:443", "https://poems.example.org"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("poems.example.org", None),
        ("https://poems.example.org/", None),
        ("https://poems.example.org/app", None),
        ("ftp://poems.example.org", None),
        ("https://user@poems.example.org", None),
        ("https://poems.example.org:99999", None),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(given: str, origin: str | None) -> None:
    assert normalize_origin(given) == origin


def test_a_bad_trusted_origin_is_a_clear_error() -> None:
    assert parse_origins(" https://a.example , http://b.example:81,") == (
        "https://a.example",
        "http://b.example:81",
    )
    with pytest.raises(ConfigError) as caught:
        parse_origins("https://a.example,b.example/path")
    assert "VPSWEB_WEB_ORIGINS: 'b.example/path' is not an origin" in caught.value.problems[0]
