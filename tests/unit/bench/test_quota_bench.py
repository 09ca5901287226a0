"""The quota bench's arithmetic: shares of the bound and Redis round trips per call."""

from __future__ import annotations

import pytest

from vpsweb.bench.quota import concurrency_bound, share
from vpsweb.bench.quota_monitor import ratio, round_trips


def test_share_of_an_rpm_bound() -> None:
    # 360 calls in 100 s against 240 rpm (4 calls/s): 90 %.
    assert share(360, 100.0, 240 / 60) == pytest.approx(0.9)


def test_share_of_a_concurrency_bound() -> None:
    bound = concurrency_bound(8, 0.3)  # 8 at once, 300 ms each
    assert bound == pytest.approx(26.667, abs=1e-3)
    assert share(360, 18.0, bound) == pytest.approx(0.75)


def test_nothing_measured_is_no_share() -> None:
    assert share(10, 0.0, 4.0) == 0.0
    assert ratio(3, 0) == 0.0
    assert ratio(3, 360) == pytest.approx(3 / 360)


def test_settlements_riding_with_an_acquire_cost_no_round_trip() -> None:
    events = [
        (1.0000, "c1", "settle"),
        (1.0001, "c1", "settle"),
        (1.0002, "c1", "acquire"),  # one pipeline: one round trip
        (1.0003, "c2", "other"),
    ]
    c = round_trips(events)
    assert (c["acquire"], c["settle_rode"], c["settle_alone"], c["round_trips"]) == (1, 1, 0, 1)


def test_settlements_sent_alone_count_once_per_pipeline() -> None:
    events = [
        (1.000, "c1", "settle"),
        (1.001, "c1", "settle"),  # same pipeline
        (1.100, "c1", "other"),  # nothing asked after it: it went alone
        (2.000, "c2", "settle"),
        (2.050, "c2", "acquire"),  # too late to have ridden: two round trips
        (3.000, "c3", "settle"),  # still open at the end
    ]
    c = round_trips(events)
    assert (c["settle_alone"], c["acquire"], c["round_trips"]) == (3, 1, 4)


def test_settlements_riding_with_a_steps_own_writes_cost_no_round_trip() -> None:
    events = [
        (1.0000, "c1", "other"),  # the step's output, lease and end event ...
        (1.0001, "c1", "other"),
        (1.0002, "c1", "settle"),  # ... and the permit, in the same pipeline
        (1.5000, "c1", "acquire"),
    ]
    c = round_trips(events)
    assert (c["settle_rode"], c["settle_alone"], c["round_trips"]) == (1, 0, 1)


def test_naps_and_withdrawals_are_round_trips() -> None:
    events = [(1.0, "c1", "acquire"), (1.1, "c1", "nap"), (1.6, "c1", "withdraw")]
    assert round_trips(events)["round_trips"] == 3
