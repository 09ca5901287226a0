"""A Sentinel-watched Redis for a test: a primary, a replica and three Sentinels on free
ports of localhost, agreed on the master (and the replica in sync) before ``start``
returns.

``down-after-milliseconds`` 1000 and a short ``failover-timeout``: a SIGKILLed primary is
replaced within a few seconds. A missing redis-server skips, but fails on CI (CI=true).
``appendonly``: the primary keeps an AOF, so that ``restart_old_primary`` brings it back
with its data, as an operator restarting it would (the split-brain window).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.helpers.redis_server import start_redis
from vpsweb.local.processes import RedisServer, free_port, redis_server_binary, stop_process

MASTER = "vpsweb-master"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
SENTINELS = 3


def _binary() -> str:
    try:
        return redis_server_binary()
    except Exception as exc:  # no redis-server on this machine
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no redis-server: {exc}")


@dataclass
class SentinelGroup:
    primary: RedisServer | None = None
    replica: RedisServer | None = None
    sentinel_ports: list[int] = field(default_factory=list)
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vpsweb-sent-")))
    appendonly: bool = False

    @property
    def url(self) -> str:
        """The store's (and broker's) URL: ``redis+sentinel://...``."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self, timeout_s: float = 30.0) -> SentinelGroup:
        binary = _binary()
        self.primary = start_redis(binary=binary, appendonly=self.appendonly)
        self.replica = start_redis(binary=binary)
        primary = redis.Redis(port=self.primary.port)
        primary.config_set("repl-diskless-sync-delay", 0)  # not 5 s before the first sync
        primary.close()
        replica = redis.Redis(port=self.replica.port)
        replica.config_set("repl-diskless-sync-delay", 0)  # nor after its promotion
        replica.replicaof("127.0.0.1", self.primary.port)
        replica.close()
        for i in range(SENTINELS):
            port = free_port()
            conf = self.workdir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"logfile {self.workdir / f'sentinel-{i}.log'}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            proc = subprocess.Popen(
                [binary, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.sentinel_ports.append(port)
            self.sentinels.append(proc)
        self._wait_agreed(self.primary.port, timeout_s)
        return self

    def _wait_agreed(self, master_port: int, timeout_s: float) -> None:
        """Until every Sentinel names ``master_port`` as the master and knows the others
        and the replica (so that a failover can be voted)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            agreed = all(self._agreed(port, master_port) for port in self.sentinel_ports)
            if agreed and self._replica_in_sync():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Sentinels did not agree on the master in {timeout_s} s")

    def _replica_in_sync(self) -> bool:
        assert self.replica is not None
        client = redis.Redis(port=self.replica.port, decode_responses=True)
        try:
            return client.info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _agreed(self, port: int, master_port: int) -> bool:
        client = redis.Redis(port=port, socket_connect_timeout=0.5, decode_responses=True)
        try:
            addr = client.sentinel_get_master_addr_by_name(MASTER)
            others = client.sentinel_sentinels(MASTER)
            replicas = client.sentinel_slaves(MASTER)
        except redis.RedisError:
            return False
        finally:
            client.close()
        live = [r for r in replicas if not r.get("is_odown") and not r.get("is_sdown")]
        return bool(addr) and int(addr[1]) == master_port and len(others) >= 2 and bool(live)

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        try:
            return int(client.sentinel_get_master_addr_by_name(MASTER)[1])
        finally:
            client.close()

    def kill_primary(self) -> float:
        """SIGKILL the primary; the monotonic time of the kill."""
        assert self.primary is not None and self.primary.proc is not None
        self.primary.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        self.primary.proc.wait()
        return killed

    def pause_primary(self) -> float:
        """SIGSTOP the primary: its clients' connections stay open (a VM frozen, a
        network cut off), unlike a kill's. The monotonic time of the pause."""
        assert self.primary is not None and self.primary.proc is not None
        self.primary.proc.send_signal(signal.SIGSTOP)
        return time.monotonic()

    def resume_old_primary(self) -> float:
        """SIGCONT the paused primary: it answers again as a master on the connections it
        had. The monotonic time then."""
        assert self.primary is not None and self.primary.proc is not None
        self.primary.proc.send_signal(signal.SIGCONT)
        return time.monotonic()

    def wait_promoted(self, timeout_s: float = 30.0) -> float:
        """Until the Sentinels name the replica as the master; the monotonic time then."""
        assert self.replica is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.master_port() == self.replica.port:
                    return time.monotonic()
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no failover within {timeout_s} s")

    def set_down_after(self, ms: int) -> None:
        """Change ``down-after-milliseconds`` on every Sentinel (as SENTINEL SET would in
        production)."""
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_connect_timeout=1)
            try:
                client.execute_command("SENTINEL", "SET", MASTER, "down-after-milliseconds", ms)
            finally:
                client.close()

    def restart_old_primary(self) -> float:
        """Start the killed primary again on its port with its data dir (its AOF): it
        comes up a master, with no idea of the failover, until the Sentinels make it a
        replica of the new one. The monotonic time when it answered."""
        assert self.primary is not None
        self.primary.stop(keep_data=True)  # reaps the dead process, keeps the AOF
        self.primary.start()
        return time.monotonic()

    def role(self, port: int) -> list[object]:
        """ROLE of the server on ``port``: ["master", offset, replicas] or
        ["slave", host, port, state, offset]."""
        client = redis.Redis(port=port, socket_connect_timeout=1, decode_responses=True)
        try:
            return list(client.execute_command("ROLE"))
        finally:
            client.close()

    def stop(self) -> None:
        for proc in self.sentinels:
            stop_process(proc)
        for server in (self.primary, self.replica):
            if server is not None:
                server.stop()
