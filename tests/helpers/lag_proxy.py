"""A TCP proxy that delays one direction: put between a replica and its primary, the
replica lags by ``delay_s`` while staying connected, answering and promotable.

What the upstream (the primary) sends reaches the client (the replica) ``delay_s``
after it arrived, in order; the other way (the replica's acknowledgements) goes at
once. When the upstream closes (the primary was SIGKILLed), whatever is still
delayed is dropped with the connection: the replica never gets the writes that were
"on the wire", as when a primary's machine dies. That is the loss WAIT guards against.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

from vpsweb.local.processes import free_port

CHUNK = 65536


class LagProxy:
    """Listens on ``port`` (127.0.0.1) and forwards to ``upstream_port``; ``delay_s``
    may be changed at any time (raise it only, or what is queued would reorder)."""

    def __init__(self, upstream_port: int, delay_s: float = 0.0) -> None:
        self.upstream_port, self.delay_s = upstream_port, delay_s
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                down.close()  # the primary is gone: the replica sees its link down
                continue
            up.settimeout(None)
            self._sockets += [down, up]
            gone = threading.Event()
            pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(target=self._pump, args=(down, up, gone), daemon=True).start()
            threading.Thread(target=self._read, args=(up, pending, gone), daemon=True).start()
            threading.Thread(
                target=self._deliver, args=(pending, down, up, gone), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gone: threading.Event) -> None:
        """The replica's side, at once."""
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        gone.set()

    def _read(
        self, up: socket.socket, pending: queue.Queue[tuple[float, bytes]], gone: threading.Event
    ) -> None:
        try:
            while data := up.recv(CHUNK):
                pending.put((time.monotonic() + self.delay_s, data))
        except OSError:
            pass
        gone.set()

    def _deliver(
        self,
        pending: queue.Queue[tuple[float, bytes]],
        down: socket.socket,
        up: socket.socket,
        gone: threading.Event,
    ) -> None:
        """The primary's side, each chunk when due; on the primary's end, close both
        sockets and drop what is still queued."""
        while not gone.is_set():
            try:
                due, data = pending.get(timeout=0.05)
            except queue.Empty:
                continue
            while not gone.is_set() and (left := due - time.monotonic()) > 0:
                time.sleep(min(0.01, left))
            if gone.is_set():
                break
            try:
                down.sendall(data)
            except OSError:
                break
        for s in (down, up):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()


def replicate_through(replica_port: int, proxy: LagProxy, timeout_s: float = 30.0) -> None:
    """Make the redis-server on ``replica_port`` replicate through ``proxy`` (a partial
    resync when it already replicated the proxy's upstream), and wait for the link."""
    import redis

    client = redis.Redis(port=replica_port, decode_responses=True)
    try:
        client.replicaof("127.0.0.1", proxy.port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = client.info("replication")
            if info.get("master_port") == proxy.port and info.get("master_link_status") == "up":
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"the replica did not sync through the proxy within {timeout_s} s")
