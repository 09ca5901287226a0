"""`vpsweb flower`: Flower against the configured broker, with basic auth required.

Flower serves /metrics without authentication even when basic auth is on
(mher/flower#1342). Task names and worker names are operational information, so
here /metrics demands the same credentials as the rest; a Prometheus scraper can
send them (``basic_auth`` in its scrape config).

Credentials come from VPSWEB_FLOWER_USER / VPSWEB_FLOWER_PASSWORD and reach
Flower through its FLOWER_BASIC_AUTH environment option, never through argv
(where any local user could read them with ps).

/metrics also carries vpsweb's usage counters (tokens, cost, candidate failures,
judge fallbacks per mode and parallel_count) and the providers' quotas (calls,
waits, 429s, the adaptive allowance per bucket), read from the state store after
Flower's own task metrics, so that one authenticated scrape gets all of them.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vpsweb import settings
from vpsweb.errors import VpswebError
from vpsweb.settings import FLOWER_PASSWORD_ENV as PASSWORD_ENV
from vpsweb.settings import FLOWER_USER_ENV as USER_ENV

if TYPE_CHECKING:  # pragma: no cover - the store is imported when first scraped
    from vpsweb.storage import Storage


class FlowerConfigError(VpswebError):
    """Flower's credentials are missing or unusable."""


# The values .env.example ships with: a copied template must not become a live login.
PLACEHOLDER_PASSWORDS = frozenset({"change-me", "change-me-too"})
MIN_PASSWORD_LENGTH = 12
_LOCALHOST = ("127.0.0.1", "localhost", "::1")


def credential_problem(user: str, password: str) -> str | None:
    """Why Flower must not run with these credentials, or None if it may.

    Flower splits FLOWER_BASIC_AUTH on ',' into several accepted ``user:password``
    strings (flower/command.py, apply_env_options), so a comma in either part
    would let a fragment log in alone; a ':' in the user makes the split point
    between user and password ambiguous.
    """
    if ":" in user or "," in user:
        return f"{USER_ENV} must not contain ':' or ',': choose a plain name"
    if "," in password:
        return (
            f"{PASSWORD_ENV} must not contain ',': Flower splits its credentials on "
            "commas, so each piece would log in alone. Generate one without: "
            "openssl rand -hex 24"
        )
    if password in PLACEHOLDER_PASSWORDS:
        return (
            f"{PASSWORD_ENV} is still the .env.example placeholder {password!r}: "
            "set a real one, e.g. openssl rand -hex 24"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        return (
            f"{PASSWORD_ENV} is shorter than {MIN_PASSWORD_LENGTH} characters: "
            "set a longer one, e.g. openssl rand -hex 24"
        )
    return None


def flower_environment(
    env: dict[str, str], *, address: str, allow_no_auth_on_localhost: bool
) -> dict[str, str]:
    """The environment for the Flower process; refuses to run open unless told to."""
    user, password = env.get(USER_ENV, ""), env.get(PASSWORD_ENV, "")
    child = dict(env)
    if user and password:
        problem = credential_problem(user, password)
        if problem:
            raise FlowerConfigError(problem)
        child["FLOWER_BASIC_AUTH"] = f"{user}:{password}"
        return child
    if allow_no_auth_on_localhost and address in _LOCALHOST:
        child.pop("FLOWER_BASIC_AUTH", None)
        child["FLOWER_UNAUTHENTICATED_API"] = "true"
        return child
    raise FlowerConfigError(
        f"Flower needs credentials: set {USER_ENV} and {PASSWORD_ENV}, or pass "
        "--dev-no-auth to run without them bound to 127.0.0.1"
    )


log = logging.getLogger(__name__)
USAGE_STORE_RETRIES = 1  # a scrape must not hang on an unreachable store


@functools.lru_cache(maxsize=1)
def _usage_store() -> Storage:
    from vpsweb.storage import connect

    return connect(settings.require_redis_url("vpsweb flower"), retries=USAGE_STORE_RETRIES)


def _metrics_text(what: str, make: Callable[[], str]) -> str:
    """``make()``, or a comment saying why ``what`` cannot be read (Flower's own
    metrics, and vpsweb's other families, are served regardless)."""
    try:
        return make()
    except Exception as exc:  # a scrape gets Flower's metrics whatever the store does
        log.warning("vpsweb %s metrics unavailable: %s", what, exc)
        reason = " ".join(str(exc).split())
        return f"# vpsweb {what} metrics unavailable: {reason}\n"


def _quota_text() -> str:
    from vpsweb.config import load_config
    from vpsweb.monitoring.quota_stats import quota_prometheus, quota_states

    states = quota_states(_usage_store(), load_config().models)
    return "" if states is None else quota_prometheus(states)


def usage_metrics() -> str:
    """vpsweb's usage counters, then the providers' quotas (calls, waits, 429s, the
    adaptive allowance per bucket), in Prometheus text."""
    from vpsweb.monitoring.usage import prometheus

    usage = _metrics_text("usage", lambda: prometheus(_usage_store().usage.counters()))
    return usage + _metrics_text("quota", _quota_text)


def _append_usage_metrics() -> None:
    """Flower's Metrics.get (2.2: write ``generate_latest()``), then vpsweb's counters,
    read in a thread so that Flower's event loop never waits on Redis."""
    import tornado.ioloop
    from flower.views import monitor

    original = monitor.Metrics.get
    if getattr(original, "vpsweb_usage", False):
        return

    async def get(self: Any) -> None:
        await original(self)
        text = await tornado.ioloop.IOLoop.current().run_in_executor(None, usage_metrics)
        self.write(text)

    get.vpsweb_usage = True  # type: ignore[attr-defined]
    monitor.Metrics.get = get


# kombu names a connection with a transport class "module:Class://..."; Flower's broker
# page (queue lengths) picks its client by the URL's scheme and answered 404 ("'redis'
# broker is not supported") for both of vpsweb's Redis transports.
_TRANSPORT_SCHEMES = {
    "vpsweb.workers.broker:RedisTransport": "redis",
    "vpsweb.workers.broker:SentinelTransport": "sentinel",
}


def flower_broker_uri(uri: str) -> str:
    """The broker URI in a scheme Flower's broker page knows (``redis://``, or
    ``sentinel://`` with the master's name from the transport options)."""
    scheme, sep, rest = uri.partition("://")
    return f"{_TRANSPORT_SCHEMES[scheme]}{sep}{rest}" if scheme in _TRANSPORT_SCHEMES else uri


def _name_the_broker_for_flower() -> None:
    from flower.app import Flower

    original = Flower.__dict__["broker_uri_with_password"]  # a cached_property in 2.2
    if getattr(getattr(original, "fget", None), "vpsweb_scheme", False):
        return

    def uri(self: Any) -> str:
        return flower_broker_uri(original.__get__(self, Flower))

    uri.vpsweb_scheme = True  # type: ignore[attr-defined]
    Flower.broker_uri_with_password = property(uri)


def _protect_metrics() -> None:
    import tornado.web
    from flower.views import monitor

    if not getattr(monitor.Metrics.get, "vpsweb_protected", False):
        protected = tornado.web.authenticated(monitor.Metrics.get)
        protected.vpsweb_protected = True  # type: ignore[attr-defined]
        monitor.Metrics.get = protected


def main(argv: list[str] | None = None) -> int:
    """Entry point of the Flower process: add vpsweb's usage to /metrics and protect it
    (the check wraps the whole handler), let the broker page know vpsweb's transports,
    then run Flower's own CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    _append_usage_metrics()
    _name_the_broker_for_flower()
    if os.environ.get("FLOWER_BASIC_AUTH"):
        _protect_metrics()
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", "-A", "vpsweb.workers.app", "flower", *args]
    return int(celery_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
