"""Counting what one thread sends to Redis: one packed send per command or pipeline
(a MULTI/EXEC transaction too), which is one round trip. A new connection's handshake
(HELLO, CLIENT SETINFO, ...) is the pool's, not the caller's: it is not counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The sends this thread makes inside the block (sync redis-py connections)."""
    from redis.connection import AbstractConnection

    sent: list[int] = []
    me = threading.get_ident()
    connecting = threading.local()
    send, on_connect = AbstractConnection.send_packed_command, AbstractConnection.connect

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        if threading.get_ident() == me and not getattr(connecting, "now", False):
            sent.append(1)
        return send(self, command, check_health)

    def connect(self: Any) -> Any:
        connecting.now = True
        try:
            return on_connect(self)
        finally:
            connecting.now = False

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", counting)
        patch.setattr(AbstractConnection, "connect", connect)
        yield sent
