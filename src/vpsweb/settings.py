"""Every ``VPSWEB_*`` environment variable, in one place, and how each is read.

Nothing here is read at import time: callers ask when they need a value, so
importing vpsweb never depends on the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from vpsweb.errors import SettingsError
from vpsweb.redis_target import (
    CLUSTER_SCHEME,
    Durability,
    RedisTarget,
    parse_sentinels,
    parse_target,
)

REDIS_URL_ENV = "VPSWEB_REDIS_URL"  # the state store: jobs, step outputs, progress
BROKER_URL_ENV = "VPSWEB_BROKER_URL"  # Celery's broker; defaults to the state store
# Redis's password apart from the URL, so generated passwords ('/', '@', '#', ...)
# need no hand-encoding: it is URL-encoded into the Redis URL(s) here.
REDIS_PASSWORD_ENV = "VPSWEB_REDIS_PASSWORD"
# Sentinel instead of VPSWEB_REDIS_URL: the Sentinels' addresses (host:port,...), the
# master's name, the database (default 0) and Sentinel's own password; all can also be
# one URL, VPSWEB_REDIS_URL=redis+sentinel://host:port,host:port/master/db
REDIS_SENTINELS_ENV = "VPSWEB_REDIS_SENTINELS"
REDIS_MASTER_ENV = "VPSWEB_REDIS_MASTER"
REDIS_DB_ENV = "VPSWEB_REDIS_DB"
SENTINEL_PASSWORD_ENV = "VPSWEB_SENTINEL_PASSWORD"
# Replicas that must acknowledge the writes guarding billing and endings (WAIT): default
# 1 behind Sentinel, 0 (off) for a plain Redis URL; and how long one WAIT blocks (ms).
REDIS_REPLICA_ACKS_ENV = "VPSWEB_REDIS_REPLICA_ACKS"
REDIS_ACK_TIMEOUT_ENV = "VPSWEB_REDIS_ACK_TIMEOUT_MS"
CLUSTER_BROKER_ERROR = (
    f"{BROKER_URL_ENV}: a Redis Cluster cannot be Celery's broker (kombu has no Cluster "
    "transport): set it to a single Redis (redis://...), a Sentinel "
    "(redis+sentinel://...) or RabbitMQ (amqp://...)"
)
CONFIG_DIR_ENV = "VPSWEB_CONFIG_DIR"  # a config directory instead of the packaged one
OFFLINE_ENV = "VPSWEB_OFFLINE"  # 1: every step goes to the offline simulator
SIMULATOR_URL_ENV = "VPSWEB_SIMULATOR_URL"  # where workers find the simulator
FLOWER_USER_ENV = "VPSWEB_FLOWER_USER"
FLOWER_PASSWORD_ENV = "VPSWEB_FLOWER_PASSWORD"
WORKER_CONCURRENCY_ENV = "VPSWEB_WORKER_CONCURRENCY"
DATA_DIR_ENV = "VPSWEB_DATA_DIR"  # where embedded runs keep their jobs
# The redis-server embedded runs start (default: the newest found; see local/redis_binary)
REDIS_SERVER_ENV = "VPSWEB_REDIS_SERVER"
WEB_USER_ENV = "VPSWEB_WEB_USER"  # basic auth of `vpsweb web`
WEB_PASSWORD_ENV = "VPSWEB_WEB_PASSWORD"
WEB_ORIGINS_ENV = "VPSWEB_WEB_ORIGINS"  # extra trusted origins of `vpsweb web` (a proxy)
# Event-stream caps of one `vpsweb web` process (vpsweb.web.feed.StreamLimits)
WEB_MAX_STREAMS_ENV = "VPSWEB_WEB_MAX_STREAMS"
WEB_MAX_STREAMS_PER_JOB_ENV = "VPSWEB_WEB_MAX_STREAMS_PER_JOB"
WEB_MAX_JOBS_FOLLOWED_ENV = "VPSWEB_WEB_MAX_JOBS_FOLLOWED"
SIM_ENV_PREFIX = "VPSWEB_SIM_"  # simulator knobs: VPSWEB_SIM_LATENCY_MS, ...

DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8765/v1"

_TRUE = {"1", "true", "yes", "on"}


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def offline(env: Mapping[str, str] | None = None) -> bool:
    return truthy(_env(env).get(OFFLINE_ENV))


_REDIS_SCHEMES = ("redis", "rediss")


def with_redis_password(url: str, password: str, *, replace: bool = True) -> str:
    """``url`` with ``password`` URL-encoded into it (redis:// and rediss:// only).

    redis-py, kombu, Celery and Flower all percent-decode the password, so any
    character survives. ``replace=False`` keeps a password the URL already has.
    Other schemes (amqp://, unix://) are returned unchanged.
    """
    parts = urlsplit(url)
    if not password or parts.scheme.lower() not in _REDIS_SCHEMES:
        return url
    # rpartition: the host part never holds '@', a hand-written password might.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and parts.password and not replace:
        return url
    user = userinfo.partition(":")[0] if at else ""
    netloc = f"{user}:{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


def redis_url(env: Mapping[str, str] | None = None) -> str | None:
    """The state store: VPSWEB_REDIS_URL (or the VPSWEB_REDIS_SENTINELS form), with
    VPSWEB_REDIS_PASSWORD and VPSWEB_SENTINEL_PASSWORD merged in if set.

    A malformed value is a SettingsError of one line naming the variable.
    """
    e = _env(env)
    target = redis_target(e)
    if target is None:
        return None
    if target.is_sentinel or target.is_cluster:
        return target.as_url()
    return with_redis_password(str(target.url), e.get(REDIS_PASSWORD_ENV, ""))


def redis_target(env: Mapping[str, str] | None = None) -> RedisTarget | None:
    """The state store as a RedisTarget (passwords merged in), or None when unset."""
    e = _env(env)
    url = e.get(REDIS_URL_ENV) or None
    hosts = e.get(REDIS_SENTINELS_ENV) or None
    if hosts:
        if url:
            raise SettingsError(f"{REDIS_SENTINELS_ENV}: set it or {REDIS_URL_ENV}, not both")
        target = _sentinel_target(hosts, e)
    elif url:
        target = parse_target(url, REDIS_URL_ENV)
    else:
        return None
    return target.with_passwords(e.get(REDIS_PASSWORD_ENV, ""), e.get(SENTINEL_PASSWORD_ENV, ""))


def durability(target: RedisTarget, env: Mapping[str, str] | None = None) -> Durability:
    """The replica acknowledgements the store at ``target`` asks for (see
    RedisTarget.durability); a bad value is one line naming its variable."""
    e = _env(env)
    return target.durability(
        e.get(REDIS_REPLICA_ACKS_ENV),
        e.get(REDIS_ACK_TIMEOUT_ENV),
        acks_from=REDIS_REPLICA_ACKS_ENV,
        timeout_from=REDIS_ACK_TIMEOUT_ENV,
    )


def _sentinel_target(hosts: str, e: Mapping[str, str]) -> RedisTarget:
    try:
        sentinels = parse_sentinels(hosts)
    except ValueError as exc:
        raise SettingsError(f"{REDIS_SENTINELS_ENV}: {exc}") from None
    master = (e.get(REDIS_MASTER_ENV) or "").strip()
    if not master:
        raise SettingsError(
            f"{REDIS_MASTER_ENV}: {REDIS_SENTINELS_ENV} needs the name Sentinel knows "
            "the master by (e.g. mymaster)"
        )
    db = (e.get(REDIS_DB_ENV) or "0").strip()
    if not db.isdigit():
        raise SettingsError(f"{REDIS_DB_ENV}: the database must be a number, not {db!r}")
    return RedisTarget(sentinels=sentinels, master=master, db=int(db))


def set_store_url(env: MutableMapping[str, str], url: str) -> None:
    """``env`` (a child's environment) pointed at the store ``url``: VPSWEB_REDIS_URL,
    and the Sentinel variables it replaces removed (both set is an error)."""
    env[REDIS_URL_ENV] = url
    for name in (REDIS_SENTINELS_ENV, REDIS_MASTER_ENV, REDIS_DB_ENV):
        env.pop(name, None)


def check_redis_url(url: str, where: str, env: Mapping[str, str] | None = None) -> str:
    """A Redis URL given as a flag or argument (``where``), checked, with the
    environment's passwords filling in what it lacks."""
    e = _env(env)
    target = parse_target(url, where)
    if target.is_sentinel or target.is_cluster:
        password, sentinel = e.get(REDIS_PASSWORD_ENV, ""), e.get(SENTINEL_PASSWORD_ENV, "")
        return target.with_passwords(password, sentinel).as_url()
    return with_redis_password(url, e.get(REDIS_PASSWORD_ENV, ""), replace=False)


def broker_url(env: Mapping[str, str] | None = None) -> str | None:
    """The broker: VPSWEB_BROKER_URL, else the state store's URL.

    VPSWEB_REDIS_PASSWORD goes into a Redis broker URL only when that URL has no
    password of its own: a separate broker Redis may well have another one. A Redis
    Cluster is never the broker (kombu has no Cluster transport): a cluster store needs
    VPSWEB_BROKER_URL, and a cluster there is a SettingsError.
    """
    e = _env(env)
    own = e.get(BROKER_URL_ENV) or None
    if own is None:
        store = redis_url(e)
        if store is not None and store.startswith(CLUSTER_SCHEME + ":"):
            raise SettingsError(CLUSTER_BROKER_ERROR)
        return store
    if own.lower().startswith(CLUSTER_SCHEME + ":"):
        raise SettingsError(CLUSTER_BROKER_ERROR)
    if own.lower().startswith("redis+sentinel:"):
        return check_redis_url(own, BROKER_URL_ENV, e)
    return with_redis_password(own, e.get(REDIS_PASSWORD_ENV, ""), replace=False)


def simulator_url(env: Mapping[str, str] | None = None) -> str:
    return _env(env).get(SIMULATOR_URL_ENV) or DEFAULT_SIMULATOR_URL


def config_dir(env: Mapping[str, str] | None = None) -> str | None:
    return _env(env).get(CONFIG_DIR_ENV) or None


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user store of embedded runs: VPSWEB_DATA_DIR, else the XDG data home."""
    e = _env(env)
    if e.get(DATA_DIR_ENV):
        return Path(e[DATA_DIR_ENV])
    base = e.get("XDG_DATA_HOME") or str(Path(e.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "vpsweb"


def redis_server(env: Mapping[str, str] | None = None) -> str | None:
    return _env(env).get(REDIS_SERVER_ENV) or None


def require_redis_url(
    what: str, env: Mapping[str, str] | None = None, *, instead: str = "pass --redis-url"
) -> str:
    """The state store's URL, or a message that says how to give one: ``instead`` is
    the other way in the caller's own terms (a flag for a command, an argument for
    Python code, which has no flags).

    There is deliberately no default: on a shared host a silent
    redis://127.0.0.1:6379 would be somebody else's Redis.
    """
    url = redis_url(env)
    if not url:
        raise SettingsError(
            f"{what} needs the cluster's Redis: set {REDIS_URL_ENV} "
            f"(e.g. redis://:password@host:6379/0) or {instead}"
        )
    return url
