"""`vpsweb flower`: Flower against the configured broker, with basic auth required.

Flower serves /metrics without authentication even when basic auth is on
(mher/flower#1342). Task names and worker names are operational information, so
here /metrics demands the same credentials as the rest; a Prometheus scraper can
send them (``basic_auth`` in its scrape config).

Credentials come from VPSWEB_FLOWER_USER / VPSWEB_FLOWER_PASSWORD and reach
Flower through its FLOWER_BASIC_AUTH environment option, never through argv
(where any local user could read them with ps).
"""

from __future__ import annotations

import os
import sys

from vpsweb.errors import VpswebError
from vpsweb.settings import FLOWER_PASSWORD_ENV as PASSWORD_ENV
from vpsweb.settings import FLOWER_USER_ENV as USER_ENV


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


def _protect_metrics() -> None:
    import tornado.web
    from flower.views import monitor

    if not getattr(monitor.Metrics.get, "_vpsweb_protected", False):
        protected = tornado.web.authenticated(monitor.Metrics.get)
        protected._vpsweb_protected = True  # type: ignore[attr-defined]
        monitor.Metrics.get = protected


def main(argv: list[str] | None = None) -> int:
    """Entry point of the Flower process: protect /metrics, then run Flower's own CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("FLOWER_BASIC_AUTH"):
        _protect_metrics()
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", "-A", "vpsweb.workers.app", "flower", *args]
    return int(celery_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
