"""Counting the quota's Redis round trips for `vpsweb bench quota` d): every command
Redis runs, from MONITOR on a socket of its own, classified and grouped per
connection (see ``round_trips``)."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from vpsweb.storage.redis import keys
from vpsweb.storage.redis.lua import load_lua

PROVIDER, QUOTA = "simulator", ("acquire", "settle")


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def round_trips(events: list[tuple[float, str, str]], gap_s: float = 0.002) -> Counter[str]:
    """Quota round trips from MONITOR's (time, connection, kind) in order (see the
    module docstring); kinds: acquire, settle, nap, withdraw, other. Commands of one
    connection less than ``gap_s`` apart are one pipeline, one round trip."""
    counts: Counter[str] = Counter()

    def close(kinds: list[str]) -> None:
        if "settle" in kinds:  # with an ask or a step's own writes, it cost nothing
            rode = "acquire" in kinds or "other" in kinds
            counts["settle_rode" if rode else "settle_alone"] += 1
        for kind in ("acquire", "nap", "withdraw"):
            counts[kind] += kinds.count(kind)

    open_: dict[str, tuple[float, list[str]]] = {}  # connection -> its pipeline so far
    for ts, conn, kind in events:
        last = open_.get(conn)
        if last is not None and ts - last[0] <= gap_s:
            last[1].append(kind)
            open_[conn] = (ts, last[1])
            continue
        if last is not None:
            close(last[1])
        open_[conn] = (ts, [kind])
    for _, kinds in open_.values():
        close(kinds)
    counts["round_trips"] = sum(counts[k] for k in ("acquire", "settle_alone", "nap", "withdraw"))
    return counts


# --- Redis MONITOR ------------------------------------------------------------------


def _classifier() -> Callable[[str], str]:
    sha = {n: hashlib.sha1(load_lua(f"quota_{n}.lua").encode()).hexdigest() for n in QUOTA}
    starts = {
        f'"EVALSHA" "{sha["acquire"]}"': "acquire",
        '"EVAL" "-- Take a permit': "acquire",
        f'"EVALSHA" "{sha["settle"]}"': "settle",
        '"EVAL" "-- A permitted call ended': "settle",
        f'"BLPOP" "{keys.quota_wake(PROVIDER)}': "nap",
        f'"ZREM" "{keys.quota_queue(PROVIDER)}"': "withdraw",
    }
    return lambda cmd: next((v for k, v in starts.items() if cmd.startswith(k)), "other")


class Monitor:
    """Every command Redis runs (scripts' own calls left out), from a socket of its own."""

    def __init__(self, url: str) -> None:
        self.url = urlparse(url)
        self.events: list[tuple[float, str, str]] = []
        self._kind = _classifier()
        self._stop = threading.Event()

    def __enter__(self) -> Monitor:
        self.sock = socket.create_connection((self.url.hostname, self.url.port or 6379))
        if self.url.password:
            self.sock.sendall(f"AUTH {self.url.password}\r\n".encode())
        self.sock.sendall(b"MONITOR\r\n")
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.1)  # the last settlements' flush
        self._stop.set()
        self.thread.join(5)
        self.sock.close()

    def _read(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                return
            *lines, buf = (buf + chunk).split(b"\r\n")
            for line in lines:
                self._parse(line[:400].decode(errors="replace"))

    def _parse(self, line: str) -> None:
        head, sep, cmd = line.partition("] ")
        if not sep or not line.startswith("+"):
            return
        ts, _, where = head[1:].partition(" [")
        conn = where.partition(" ")[2]
        if conn != "lua":
            self.events.append((float(ts), conn, self._kind(cmd)))

    def summary(self, calls: int, settled_alone: int | None = None) -> dict[str, Any]:
        """Round trips per call. ``settled_alone``: the store's own count of settlement
        round trips nothing rode with (QuotaState.settled_alone), exact where MONITOR's
        timing can only guess (a step's pipeline split across 2 ms on a busy Redis)."""
        c = round_trips(self.events)
        if settled_alone is not None:
            c["settle_alone_by_timing"] = c["settle_alone"]
            c["settle_alone"] = settled_alone
            c["round_trips"] = sum(c[k] for k in ("acquire", "settle_alone", "nap", "withdraw"))
        per = {k: round(ratio(c[k], calls), 3) for k in sorted(c)}
        return {"calls": calls, "commands": len(self.events), "counts": dict(c), "per_call": per}
