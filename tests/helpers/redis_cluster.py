"""A real Redis Cluster for a test: three primaries (``redis-server --cluster-enabled
yes``; the cluster bus on a free port of its own, or on Redis 6 port + 10000) on free
ports of localhost, in a temporary directory, joined by ``redis-cli --cluster create`` (no
replicas), ready (``cluster_state:ok`` on every node) before ``start`` returns.

A missing redis-server or redis-cli skips, but fails on CI (CI=true), as
tests.helpers.sentinel does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from vpsweb.local.processes import free_port, redis_server_binary, stop_process

PRIMARIES = 3


def _binaries() -> tuple[str, str]:
    """redis-server (the newest found) and the redis-cli beside it, else PATH's."""
    try:
        server = redis_server_binary()
        beside = Path(server).with_name("redis-cli")
        cli = str(beside) if beside.exists() else shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH")
    except Exception as exc:  # no redis-server or redis-cli on this machine
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis Cluster tools: {exc}")
    return server, cli


@dataclass
class RedisCluster:
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vpsweb-cl-")))

    @property
    def url(self) -> str:
        """The store's URL: ``redis+cluster://...`` (every node: any would do)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/0"

    def start(self, timeout_s: float = 30.0) -> RedisCluster:
        server, cli = _binaries()
        bus_option = _bus_option(server)
        for i in range(PRIMARIES):
            port = free_port() if bus_option else _port_with_free_bus()
            node = self.workdir / f"node-{i}"
            node.mkdir()
            self.procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        str(node),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        *([bus_option, str(free_port())] if bus_option else []),
                        "--cluster-node-timeout",
                        "5000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--logfile",
                        str(node / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            self.ports.append(port)
        deadline = time.monotonic() + timeout_s
        for port in self.ports:
            self._wait(lambda p=port: _ping(p), deadline, f"node {port} did not start")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        self._wait(self._ready, deadline, f"the cluster was not ready in {timeout_s} s")
        return self

    def _wait(self, check: object, deadline: float, failure: str) -> None:
        assert callable(check)
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(failure)

    def _ready(self) -> bool:
        """Every node says ``cluster_state:ok`` and counts every primary (redis-py reads
        CLUSTER INFO into a dict)."""
        for port in self.ports:
            client = redis.Redis(port=port, decode_responses=True, socket_connect_timeout=0.5)
            try:
                info = client.cluster("INFO")
            except redis.RedisError:
                return False
            finally:
                client.close()
            if info.get("cluster_state") != "ok" or int(info["cluster_size"]) != PRIMARIES:
                return False
        return True

    def flush(self) -> None:
        """Every primary's keys deleted (a cluster has no one FLUSHDB)."""
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _ping(port: int) -> bool:
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _bus_option(server: str) -> str:
    """``--cluster-port`` where the server has it (Redis 7: the bus on any free port),
    else "" (the bus is port + 10000)."""
    said = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    major = said.split("v=")[1].split(".")[0] if "v=" in said else "0"
    return "--cluster-port" if int(major) >= 7 else ""


def _port_with_free_bus() -> int:
    """A free port below 55536 whose port + 10000 (Redis 6's bus) is free too."""
    import socket

    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
