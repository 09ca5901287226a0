"""The provider-style limits' arithmetic, on a clock stepped by hand (no sleeping)."""

from __future__ import annotations

import pytest

from vpsweb.simulator.limits import (
    CONCURRENCY_RETRY_MS,
    Admission,
    ProviderLimits,
    Refusal,
    TokenBucket,
    duration,
    max_tokens_of,
    refusal_response,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def admitted(got: Admission | Refusal) -> Admission:
    assert isinstance(got, Admission), got
    return got


def refused(got: Admission | Refusal) -> Refusal:
    assert isinstance(got, Refusal), got
    return got


def test_bucket_starts_full_refills_at_its_rate_and_caps_at_capacity(clock):
    bucket = TokenBucket(rate=4.0, capacity=8, now=clock)
    assert bucket.remaining() == 8 and bucket.wait_s(8) == 0
    bucket.take(8)
    assert bucket.remaining() == 0
    assert bucket.wait_s(1) == pytest.approx(0.25)
    assert bucket.reset_s() == pytest.approx(2.0)
    clock.t += 0.5
    assert bucket.remaining() == 2
    clock.t += 100
    assert bucket.remaining() == 8
    bucket.give(5)
    assert bucket.level == 8  # a refund never overfills


def test_bucket_debt_is_repaid_before_anything_fits(clock):
    bucket = TokenBucket(rate=10.0, capacity=10, now=clock)
    bucket.take(15)
    assert bucket.remaining() == 0
    assert bucket.wait_s(1) == pytest.approx(0.6)


def test_rpm_with_a_burst_refuses_the_request_past_the_burst(clock):
    limits = ProviderLimits(rpm=240, burst=8, now=clock)  # 4 a second, 8 at once
    for i in range(8):
        got = admitted(limits.admit(10, None))
        assert got.headers["x-ratelimit-remaining-requests"] == str(7 - i)
        limits.release(got)
    refusal = refused(limits.admit(10, None))
    assert refusal.kind == "requests"
    assert refusal.retry_after_ms == pytest.approx(250)
    assert refusal.headers["retry-after"] == "1"
    assert refusal.headers["retry-after-ms"] == "250"
    assert refusal.headers["x-ratelimit-limit-requests"] == "240"
    assert refusal.headers["x-ratelimit-remaining-requests"] == "0"
    assert refusal.headers["x-ratelimit-reset-requests"] == "2s"
    assert "x-ratelimit-limit-tokens" not in refusal.headers
    assert refusal.message.startswith("Rate limit reached for requests")
    clock.t += 0.25
    admitted(limits.admit(10, None))
    assert limits.counts() == {
        "accepted": 9,
        "throttled": 1,
        "throttled_by": {"requests": 1, "tokens": 0, "concurrency": 0},
        "max_in_flight_seen": 1,
    }


def test_retry_after_rounds_up_to_whole_seconds_and_is_at_least_one(clock):
    limits = ProviderLimits(rpm=20, burst=1, now=clock)  # one every 3 s
    admitted(limits.admit(1, None))
    refusal = refused(limits.admit(1, None))
    assert refusal.headers["retry-after-ms"] == "3000"
    assert refusal.headers["retry-after"] == "3"
    clock.t += 2.9995
    refusal = refused(limits.admit(1, None))
    assert refusal.headers["retry-after-ms"] == "1"
    assert refusal.headers["retry-after"] == "1"


def test_tpm_charges_prompt_plus_max_tokens_and_refunds_the_unused_part(clock):
    limits = ProviderLimits(tpm=6000, now=clock)  # 100 tokens a second, 100 at once
    got = admitted(limits.admit(30, 50))
    assert got.headers["x-ratelimit-limit-tokens"] == "6000"
    assert got.headers["x-ratelimit-remaining-tokens"] == "20"
    assert got.headers["x-ratelimit-reset-tokens"] == "800ms"
    refusal = refused(limits.admit(30, 50))
    assert refusal.kind == "tokens" and refusal.retry_after_ms == pytest.approx(600)
    got.completion_used = 10
    limits.release(got)  # 40 of the 50 charged come back
    assert limits.tokens is not None and limits.tokens.remaining() == 60
    admitted(limits.admit(30, 30))


def test_tpm_without_max_tokens_charges_the_completion_when_it_answers(clock):
    limits = ProviderLimits(tpm=6000, now=clock)
    got = admitted(limits.admit(30, None))
    got.completion_used = 50
    limits.release(got)
    assert limits.tokens is not None and limits.tokens.remaining() == 20


def test_a_request_larger_than_a_seconds_tokens_waits_instead_of_failing_for_ever(clock):
    limits = ProviderLimits(tpm=6000, now=clock)  # capacity 100 until a larger one comes
    refusal = refused(limits.admit(100, 150))
    assert limits.tokens is not None and limits.tokens.capacity == 250
    assert refusal.retry_after_ms == pytest.approx(1500)
    clock.t += 1.5
    admitted(limits.admit(100, 150))


def test_release_is_idempotent(clock):
    limits = ProviderLimits(tpm=6000, max_concurrent=1, now=clock)
    got = admitted(limits.admit(10, 10))
    limits.release(got)
    limits.release(got)
    assert limits.in_flight == 0
    assert limits.tokens is not None and limits.tokens.remaining() == 90


def test_max_concurrent_counts_requests_in_flight(clock):
    limits = ProviderLimits(max_concurrent=2, now=clock)
    first, _ = admitted(limits.admit(1, None)), admitted(limits.admit(1, None))
    refusal = refused(limits.admit(1, None))
    assert refusal.kind == "concurrency"
    assert refusal.headers["retry-after-ms"] == str(round(CONCURRENCY_RETRY_MS))
    assert refusal.headers["retry-after"] == "1"
    assert not any(h.startswith("x-ratelimit") for h in refusal.headers)
    limits.release(first)
    admitted(limits.admit(1, None))
    counts = limits.counts()
    assert counts["max_in_flight_seen"] == 2 and counts["throttled_by"]["concurrency"] == 1


def test_a_refused_request_is_charged_nothing(clock):
    limits = ProviderLimits(rpm=60, tpm=6000, burst=5, now=clock)
    refused(limits.admit(80, 80))  # too many tokens: the requests bucket keeps its 5
    assert limits.requests is not None and limits.requests.remaining() == 5
    assert limits.in_flight == 0


def test_everything_off_admits_everything_without_headers(clock):
    limits = ProviderLimits(now=clock)
    for _ in range(1000):
        got = admitted(limits.admit(10**6, 10**6))
        assert got.headers == {}
    assert limits.counts()["max_in_flight_seen"] == 1000


def test_reset_counts_keeps_live_state(clock):
    limits = ProviderLimits(max_concurrent=1, now=clock)
    admitted(limits.admit(1, None))
    refused(limits.admit(1, None))
    limits.reset_counts()
    assert limits.counts() == {
        "accepted": 0,
        "throttled": 0,
        "throttled_by": {"requests": 0, "tokens": 0, "concurrency": 0},
        "max_in_flight_seen": 1,
    }
    refused(limits.admit(1, None))  # the request in flight still holds its slot


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (0, "0ms"), (1.5, "1.5s"), (2, "2s"), (360, "6m0s"), (61.25, "1m1.25s")],
)
def test_duration_is_written_as_providers_write_it(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50, "max_tokens": 100}, 50),
        ({}, None),
        ({"max_tokens": None}, None),
        ({"max_tokens": "many"}, None),
        ({"max_tokens": True}, None),
        ({"max_tokens": -1}, None),
    ],
)
def test_max_tokens_of_reads_either_name(body, expected):
    assert max_tokens_of(body) == expected


def test_refusal_response_is_an_openai_style_429(clock):
    limits = ProviderLimits(rpm=60, burst=1, now=clock)
    admitted(limits.admit(1, None))
    resp = refusal_response(refused(limits.admit(1, None)))
    assert resp.status == 429
    assert resp.headers["retry-after"] == "1" and resp.headers["retry-after-ms"] == "1000"
    assert resp.text is not None
    assert '"type": "requests"' in resp.text and '"code": "rate_limit_exceeded"' in resp.text
