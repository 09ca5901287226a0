"""Where the state store (and, by default, the broker) is: one Redis URL, Sentinel, or
a Redis Cluster.

``parse_target`` reads the one string every part of vpsweb passes around as "the
Redis URL": ``redis://``, ``rediss://`` or ``unix://`` as before,
``redis+sentinel://[[user]:password@]host:port,host:port,.../master/db`` (the
password is Redis's; Sentinel's own goes in ``?sentinel_password=``), or
``redis+cluster://[[user]:password@]host:port,host:port,...[/0]`` (some of the
cluster's nodes: the client learns the rest; a cluster has database 0 only). A
string that is none of these is a ``SettingsError`` of one line that starts with the
variable (or flag, or argument) it came from.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict

from vpsweb.errors import SettingsError

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://host:port,host:port,.../master/db"
DEFAULT_ACK_TIMEOUT_MS = 1000
# One WAIT must end well before redis-py's 5 s read timeout, or the wait would read as
# a lost connection (and be retried as one).
MAX_ACK_TIMEOUT_MS = 4000
MAX_REPLICA_ACKS = 16
ACK_CAP_S = 60.0


class Durability(BaseModel):
    """How the writes that guard billing and endings wait for replicas (WAIT).

    ``replicas``: how many must acknowledge (0: none, the writes go on at once);
    ``timeout_ms``: how long one WAIT blocks; ``cap_s``: how long a connected but
    lagging replica is waited for in all before the write counts as failed.
    """

    model_config = ConfigDict(frozen=True)

    replicas: int = 0
    timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS
    cap_s: float = ACK_CAP_S


CLUSTER_SCHEME = "redis+cluster"
DEFAULT_CLUSTER_PORT = 6379
CLUSTER_FORM = "redis+cluster://host:port,host:port,.../0"


class RedisTarget(BaseModel):
    """A plain Redis URL, Sentinel's addresses + the master's name + db + passwords, or
    some of a Redis Cluster's nodes (+ passwords)."""

    model_config = ConfigDict(frozen=True)

    url: str | None = None  # the plain form, as given
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None  # Redis's
    sentinel_password: str | None = None
    nodes: tuple[tuple[str, int], ...] = ()  # a cluster's nodes to start from

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def durability(
        self, acks: str | None, timeout_ms: str | None, *, acks_from: str, timeout_from: str
    ) -> Durability:
        """The replica acknowledgements asked for (``acks``, ``timeout_ms``: the raw
        values, None or empty when unset; ``*_from``: where each came from, for a one-line
        error). Unset, one replica must acknowledge behind Sentinel (there is a replica to
        promote) and none on a plain Redis URL (a single server has nothing to wait for)."""
        replicas = _whole(acks, 1 if self.is_sentinel else 0, acks_from, 0, MAX_REPLICA_ACKS)
        timeout = _whole(timeout_ms, DEFAULT_ACK_TIMEOUT_MS, timeout_from, 1, MAX_ACK_TIMEOUT_MS)
        if replicas and self.is_cluster:
            # WAIT covers its own connection's writes, and a Cluster pipeline spreads a
            # step's writes over nodes: there is no one connection to ask.
            raise SettingsError(
                f"{acks_from}: replica acknowledgements (WAIT) need a single Redis or a "
                "Sentinel; with a Redis Cluster store set it to 0"
            )
        return Durability(replicas=replicas, timeout_ms=timeout)

    @property
    def is_cluster(self) -> bool:
        return bool(self.nodes)

    def with_passwords(self, password: str, sentinel_password: str) -> RedisTarget:
        """Passwords from the environment fill in the ones the URL lacks."""
        update: dict[str, Any] = {}
        if password and not self.password:
            update["password"] = password
        if sentinel_password and not self.sentinel_password:
            update["sentinel_password"] = sentinel_password
        return self.model_copy(update=update)

    def as_url(self) -> str:
        """The ``redis+sentinel://`` or ``redis+cluster://`` string of a Sentinel or
        cluster target (passwords encoded)."""
        auth = ""
        if self.password or self.username:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        if self.is_cluster:
            nodes = ",".join(f"{_host(h)}:{p}" for h, p in self.nodes)
            return f"{CLUSTER_SCHEME}://{auth}{nodes}/0"
        if not self.is_sentinel:
            return self.url or ""
        hosts = ",".join(f"{_host(h)}:{p}" for h, p in self.sentinels)
        url = f"{SENTINEL_SCHEME}://{auth}{hosts}/{quote(self.master, safe='')}/{self.db}"
        if self.sentinel_password:
            url += f"?sentinel_password={quote(self.sentinel_password, safe='')}"
        return url

    def kombu_url(self) -> str:
        """kombu's and Celery's form: ``sentinel://[:pw@]host:port/db;sentinel://...``."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return ";".join(f"sentinel://{auth}{_host(h)}:{p}/{self.db}" for h, p in self.sentinels)

    def kombu_options(self) -> dict[str, Any]:
        """The transport options kombu's sentinel transport (and Celery's SentinelBackend)
        need: the master's name, and Sentinel's own password if any."""
        options: dict[str, Any] = {"master_name": self.master}
        if self.sentinel_password:
            options["sentinel_kwargs"] = {"password": self.sentinel_password}
        return options


def _whole(text: str | None, default: int, variable: str, low: int, high: int) -> int:
    value = (text or "").strip()
    if not value:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise SettingsError(f"{variable}: {value!r} is not a whole number from {low} to {high}")
    return int(value)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_target(url: str, variable: str) -> RedisTarget:
    """``url`` read as a Redis or Sentinel target; ``variable`` names where it came from."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme in PLAIN_SCHEMES:
            _check_plain(parts, scheme)
            return RedisTarget(url=url.strip())
        if scheme == SENTINEL_SCHEME:
            return _parse_sentinel(parts.netloc, parts.path, parts.query)
        if scheme == CLUSTER_SCHEME:
            return _parse_cluster(parts.netloc, parts.path, parts.query)
    except (ValueError, SettingsError) as exc:
        raise SettingsError(f"{variable}: {exc} (in {_masked(url)!r})") from None
    raise SettingsError(
        f"{variable}: {_masked(url)!r} is not a Redis URL: use redis://host:port/db, "
        f"rediss://..., unix://..., {SENTINEL_FORM} or {CLUSTER_FORM}"
    )


def _check_plain(parts: Any, scheme: str) -> None:
    if scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return
    _ = parts.port  # ValueError when not a number
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"the database must be a number, not {db!r}")


def parse_sentinels(
    text: str, default_port: int = DEFAULT_SENTINEL_PORT, what: str = "Sentinel"
) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port,...`` (a port left out is ``default_port``: Sentinel's 26379)."""
    found = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [ipv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        else:
            host, port = item, ""
        host = host.strip("[]")
        if not host:
            raise ValueError(f"no host in {item!r}")
        if port and not port.isdigit():
            raise ValueError(f"the port of {item!r} is not a number")
        found.append((host, int(port) if port else default_port))
    if not found:
        raise ValueError(f"no {what} address (host:port,host:port,...)")
    return tuple(found)


def _parse_cluster(netloc: str, path: str, query: str) -> RedisTarget:
    userinfo, at, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    parts = [p for p in path.split("/") if p]
    if len(parts) > 1 or (parts and parts[0] != "0"):
        raise ValueError(f"a Redis Cluster has database 0 only: the form is {CLUSTER_FORM}")
    if query:
        raise ValueError(f"no options are known after '?': the form is {CLUSTER_FORM}")
    return RedisTarget(
        nodes=parse_sentinels(hosts, DEFAULT_CLUSTER_PORT, "cluster node"),
        username=unquote(user) or None,
        password=unquote(password) or None,
    )


def _parse_sentinel(netloc: str, path: str, query: str) -> RedisTarget:
    userinfo, at, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    names = [unquote(p) for p in path.split("/") if p]
    if not names:
        raise ValueError(f"no master name: the form is {SENTINEL_FORM}")
    if len(names) > 2:
        raise ValueError(f"too many path parts: the form is {SENTINEL_FORM}")
    db = names[1] if len(names) == 2 else "0"
    if not db.isdigit():
        raise ValueError(f"the database must be a number, not {db!r}")
    options = parse_qs(query)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"unknown option {sorted(unknown)[0]!r} (only sentinel_password)")
    sentinel_password = (options.get("sentinel_password") or [""])[0]
    return RedisTarget(
        sentinels=parse_sentinels(hosts),
        master=names[0],
        db=int(db),
        username=unquote(user) or None,
        password=unquote(password) or None,
        sentinel_password=sentinel_password or None,
    )


def _masked(url: str) -> str:
    """``url`` with any password replaced by ``***`` (an error message may be logged)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{hostpart}"
    masked = f"{scheme}{sep}{rest}"
    if "sentinel_password=" in masked:
        masked = masked.split("sentinel_password=")[0] + "sentinel_password=***"
    return masked
