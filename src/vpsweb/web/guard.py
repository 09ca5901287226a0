"""Who may change things through the web page, and what a loaded page may do.

Threat: the page has no per-user rights, so anyone who can make a translator's
browser send a POST spends the cluster's money (``POST /jobs`` at N=8), cancels
their work or answers their prompts. A page on any other site can do that with
an auto-submitting form or ``fetch(..., {mode: "no-cors"})``; basic auth does
not help, because the browser attaches cached credentials to such requests.

Two independent checks on every unsafe method (anything but GET/HEAD/OPTIONS),
so that one mistake (a browser quirk, a proxy that strips a header) is not enough:

1. **Origin.** A browser names the page that caused the request. ``Origin`` must
   be this server's own (scheme + Host) or one the operator trusts
   (``VPSWEB_WEB_ORIGINS``, for a reverse proxy whose public name differs from
   the Host it forwards); ``null`` (sandboxed frames, data: URLs) is refused.
   Without ``Origin``, ``Sec-Fetch-Site: cross-site/same-site`` is refused. A
   request with neither is not from a modern browser: it goes on to check 2.
2. **Token.** Every page carries ``HMAC(process secret, browser nonce)``: in each
   form as the ``csrf_token`` field, and in ``<meta name="csrf-token">`` for the
   page's own ``fetch()`` calls, which send it as ``X-CSRF-Token``. The nonce
   lives in an HttpOnly cookie. Another origin can neither read the token (the
   same-origin policy) nor forge one: a page on another *port* of the same host
   can set our cookie (cookies ignore ports), which is why the token is an HMAC
   of the cookie with a secret the server never shows, not the cookie itself.
   ``curl`` and scripts therefore work only as a browser does: GET a page (keep
   the cookie, read the meta tag), then POST with the cookie and the token.

The cookie is SameSite=Lax, not Strict: Lax already withholds it from every
cross-site POST and sub-request, and Strict would also withhold it from a link
followed from e-mail, so that page would mint a fresh nonce and silently break
the tokens of every tab already open. The secret is per process (nothing to
configure or leak; a restart makes open pages answer "reload the page"); more
than one web process behind one name would need sticky sessions.

**Host.** Bound to loopback without a password, the page is reachable by DNS
rebinding: a site whose name re-resolves to 127.0.0.1 is then same-origin with
us. So a loopback server serves only Host names that are loopback or trusted.

**What a page may do**: every response carries a Content-Security-Policy with no
inline script or style (the templates have none; job.js sets the bar's width),
``frame-ancestors 'none'`` and X-Frame-Options (no clickjacking in a frame),
nosniff, and a same-origin Referrer-Policy (job ids stay out of other sites' logs).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from vpsweb import settings
from vpsweb.errors import ConfigError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
COOKIE = "vpsweb_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_NONCE = web.RequestKey("vpsweb.guard.nonce", str)
_NEW_NONCE = web.RequestKey("vpsweb.guard.new_nonce", str)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

CROSS_SITE = (
    "refused: this request came from another site ({source}); vpsweb accepts changes "
    "only from its own pages (behind a proxy, list the public origin in "
    f"{settings.WEB_ORIGINS_ENV})"
)
NO_TOKEN = (
    f"refused: the form token ({FIELD} or the {HEADER} header, with the {COOKIE} cookie) "
    "is missing or out of date: reload the page and try again"
)
BAD_HOST = (
    "refused: unexpected Host {host!r} for a server bound to loopback "
    f"(add its origin to {settings.WEB_ORIGINS_ENV} if it is yours)"
)


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in the form browsers send in ``Origin`` (lower case,
    no default port), or None when ``value`` is not such an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    if value.strip().endswith("/") and parts.path == "/":
        return None  # browsers never send one: a trailing slash is a copy-paste of a URL
    host = parts.hostname
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def parse_origins(text: str) -> tuple[str, ...]:
    """``VPSWEB_WEB_ORIGINS``: comma-separated origins such as https://poems.example.org."""
    found: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        origin = normalize_origin(item)
        if origin is None:
            raise ConfigError(
                [
                    f"{settings.WEB_ORIGINS_ENV}: {item!r} is not an origin; give "
                    "scheme://host[:port] with no path, e.g. https://poems.example.org"
                ]
            )
        found.append(origin)
    return tuple(found)


class Guard:
    """The origin, token and Host checks and the security headers of one web app."""

    def __init__(
        self,
        trusted_origins: Iterable[str] = (),
        *,
        loopback_only: bool = False,
        secret: bytes | None = None,
    ) -> None:
        self.trusted = frozenset(trusted_origins)
        self.loopback_only = loopback_only
        self._secret = secret or secrets.token_bytes(32)
        self.trusted_hosts = frozenset(urlsplit(o).hostname or "" for o in self.trusted)

    def token(self, request: web.Request) -> str:
        """The token a page rendered for ``request`` must carry back."""
        return self._token_of(request.get(_NONCE) or self._nonce(request))

    def _token_of(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _nonce(request: web.Request) -> str:
        nonce = request.cookies.get(COOKIE, "")
        if 20 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum():
            request[_NONCE] = nonce
        else:
            nonce = request[_NONCE] = request[_NEW_NONCE] = secrets.token_urlsafe(32)
        return nonce

    def middleware(self) -> Any:
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            self._check_host(request)
            nonce = self._nonce(request)
            if request.method not in SAFE_METHODS:
                self._check_origin(request)
                await self._check_token(request, nonce)
            return await handler(request)

        return guard

    def _check_host(self, request: web.Request) -> None:
        if not self.loopback_only:
            return
        name = urlsplit(f"//{request.host}").hostname or ""
        if name not in LOOPBACK_NAMES and name not in self.trusted_hosts:
            raise web.HTTPMisdirectedRequest(text=BAD_HOST.format(host=request.host))

    def _check_origin(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is not None:
            given = normalize_origin(origin)
            own = normalize_origin(f"{request.scheme}://{request.host}")
            if given is None or (given != own and given not in self.trusted):
                raise web.HTTPForbidden(text=CROSS_SITE.format(source=f"Origin {origin}"))
            return
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site in ("cross-site", "same-site"):
            raise web.HTTPForbidden(text=CROSS_SITE.format(source=f"Sec-Fetch-Site {site}"))

    async def _check_token(self, request: web.Request, nonce: str) -> None:
        given = request.headers.get(HEADER, "")
        if not given and request.content_type in FORM_TYPES:
            try:
                # Cached by aiohttp: the handler's own request.post() reads the same form.
                given = str((await request.post()).get(FIELD, ""))
            except (ValueError, AssertionError):
                raise web.HTTPBadRequest(text="malformed form data") from None
        fresh = _NEW_NONCE in request  # no cookie: no token can match
        if fresh or not hmac.compare_digest(given.encode(), self._token_of(nonce).encode()):
            raise web.HTTPForbidden(text=NO_TOKEN)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every response: the security headers; a new browser: its nonce cookie."""
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        nonce = request.get(_NEW_NONCE)
        if nonce:
            # A header, not response.set_cookie(): aiohttp has already serialized cookies.
            jar: SimpleCookie = SimpleCookie()
            jar[COOKIE] = nonce
            morsel = jar[COOKIE]
            morsel["httponly"], morsel["samesite"], morsel["path"] = True, "Lax", "/"
            morsel["secure"] = request.secure
            response.headers.add("Set-Cookie", jar[COOKIE].OutputString())
