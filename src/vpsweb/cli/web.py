"""`vpsweb web`: serve the translators' web page (see vpsweb.web.application)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from vpsweb import settings
from vpsweb.cli.common import EXIT_OK, fail, redis_url

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def credentials(env: dict[str, str], host: str) -> tuple[str, str] | None:
    """The basic-auth pair, or None on loopback without one; the same rules as Flower's
    (a real password of 12+ characters). Beyond loopback, credentials are required."""
    from vpsweb.errors import ConfigError
    from vpsweb.monitoring.flower import MIN_PASSWORD_LENGTH, PLACEHOLDER_PASSWORDS

    user, password = env.get(settings.WEB_USER_ENV, ""), env.get(settings.WEB_PASSWORD_ENV, "")
    if bool(user) != bool(password):
        # Half a pair used to start the page with no authentication at all, silently.
        given, missing = (
            (settings.WEB_USER_ENV, settings.WEB_PASSWORD_ENV)
            if user
            else (settings.WEB_PASSWORD_ENV, settings.WEB_USER_ENV)
        )
        raise ConfigError(
            [f"{given} is set but {missing} is not: set both for basic auth, or neither"]
        )
    if not (user and password):
        if host in LOOPBACK:
            return None
        raise ConfigError(
            [
                f"refusing to serve on {host} without credentials: set "
                f"{settings.WEB_USER_ENV} and {settings.WEB_PASSWORD_ENV} (or keep the "
                "default --host 127.0.0.1)"
            ]
        )
    if ":" in user:
        raise ConfigError([f"{settings.WEB_USER_ENV} must not contain ':'"])
    if password in PLACEHOLDER_PASSWORDS or len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            [
                f"{settings.WEB_PASSWORD_ENV} must be a real password of at least "
                f"{MIN_PASSWORD_LENGTH} characters, e.g. openssl rand -hex 24"
            ]
        )
    return user, password


def cmd_web(args: argparse.Namespace) -> int:
    from aiohttp import web

    from vpsweb.client.aio import AsyncClient
    from vpsweb.web.application import create_app
    from vpsweb.web.feed import StreamLimits
    from vpsweb.web.guard import Guard, parse_origins

    url = redis_url(args)
    if url is None:
        return fail(
            f"vpsweb web needs the cluster's Redis: set {settings.REDIS_URL_ENV} or --redis-url"
        )
    auth = credentials(dict(os.environ), args.host)
    origins = parse_origins(os.environ.get(settings.WEB_ORIGINS_ENV, ""))
    # Bound to loopback, only loopback (or trusted) Host names: no DNS rebinding.
    guard = Guard(origins, loopback_only=args.host in LOOPBACK)
    limits = StreamLimits.from_env()  # a bad value stops here, not inside the server

    async def build() -> web.Application:
        return create_app(AsyncClient(redis_url=url), auth=auth, guard=guard, limits=limits)

    print(f"vpsweb web on http://{args.host}:{args.port}/", flush=True)
    web.run_app(build(), host=args.host, port=args.port, print=None, access_log=None)
    return EXIT_OK


def add_web_parser(sub: Any) -> None:
    p = sub.add_parser("web", help="serve the web page (submit, watch, compare, read)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--redis-url", help=f"the cluster's Redis (default: ${settings.REDIS_URL_ENV})")
    p.set_defaults(func=cmd_web)
