"""What a WAIT's answer means (storage.redis.durability): pure rules, no server."""

from __future__ import annotations

import pytest

from vpsweb.storage.redis.durability import replicas_at, verdict


@pytest.mark.parametrize(
    ("acked", "wanted", "online", "expected"),
    [
        (1, 1, 1, "acked"),
        (2, 1, 2, "acked"),
        (0, 1, 0, "alone"),  # nothing a failover could promote: go on
        (0, 1, 1, "lagging"),  # a replica online that has not got it: wait
        (1, 2, 1, "acked"),  # fewer online than asked, and every one has it
        (1, 2, 2, "lagging"),
        (0, 2, 0, "alone"),
    ],
)
def test_verdict(acked: int, wanted: int, online: int, expected: str) -> None:
    assert verdict(acked, wanted, online) == expected


def test_only_online_replicas_count_and_only_those_past_the_offset_acknowledged() -> None:
    info = {
        "role": "master",
        "connected_slaves": 3,
        "master_repl_offset": 900,
        "slave0": {"ip": "127.0.0.1", "port": 1, "state": "online", "offset": 900, "lag": 0},
        "slave1": {"ip": "127.0.0.1", "port": 2, "state": "online", "offset": 850, "lag": 1},
        "slave2": {"ip": "127.0.0.1", "port": 3, "state": "wait_bgsave", "offset": 0, "lag": 0},
    }
    assert replicas_at(info, 900) == (2, 1)
    assert replicas_at(info, 800) == (2, 2)
    assert replicas_at({"role": "master", "connected_slaves": 0}, 10) == (0, 0)
