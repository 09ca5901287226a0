"""The simulator's provider-style limits over real HTTP, seen through the real openai SDK:
what a client pacing itself against a provider's quota would see."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from vpsweb.local.processes import stop_process
from vpsweb.local.simulator_process import start_simulator_process

pytestmark = [pytest.mark.integration]

MESSAGES = [{"role": "user", "content": "<initial_translation> moonlight"}]


@pytest.fixture()
def simulator() -> Iterator[Callable[..., str]]:
    """Starts simulators with the given flags; stops them all afterwards."""
    procs = []

    def start(*args: str) -> str:
        proc, url = start_simulator_process(extra_args=list(args))
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        stop_process(proc)


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as resp:
        return json.load(resp)


def at_once(url: str, n: int, **kw: Any) -> list[Any]:
    """n requests released together from n threads: each a raw response or the error."""
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=10)
    barrier = threading.Barrier(n)

    def one(_: int) -> Any:
        barrier.wait()
        try:
            return client.chat.completions.with_raw_response.create(
                model="deepseek-chat", messages=MESSAGES, **kw
            )
        except openai.RateLimitError as exc:
            return exc

    with client, ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def split(results: list[Any]) -> tuple[list[Any], list[openai.RateLimitError]]:
    errors = [r for r in results if isinstance(r, openai.RateLimitError)]
    return [r for r in results if not isinstance(r, openai.RateLimitError)], errors


def test_rpm_refuses_what_exceeds_the_burst_with_the_providers_headers(simulator):
    url = simulator("--rpm", "120", "--burst", "2")
    answered, refused = split(at_once(url, 3))
    assert len(answered) == 2 and len(refused) == 1
    for raw in answered:
        assert raw.parse().choices[0].message.content
        assert raw.headers["x-ratelimit-limit-requests"] == "120"
        assert raw.headers["x-ratelimit-remaining-requests"] in ("0", "1")
    err = refused[0]
    assert err.status_code == 429
    assert err.type == "requests" and err.code == "rate_limit_exceeded"
    assert "Rate limit reached for requests" in err.message
    headers = err.response.headers
    assert headers["retry-after"] == "1"  # 2 a second: at most half a second, rounded up
    assert 0 < int(headers["retry-after-ms"]) <= 500
    assert headers["x-ratelimit-limit-requests"] == "120"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith(("ms", "s"))
    assert "x-ratelimit-limit-tokens" not in headers
    got = stats(url)
    assert got["accepted"] == 2 and got["throttled"] == 1
    assert got["throttled_by"] == {"requests": 1, "tokens": 0, "concurrency": 0}
    assert got["total_requests"] == 3 and got["by_status"] == {"200": 2, "429": 1}


def test_max_concurrent_refuses_requests_past_the_limit_while_others_answer(simulator):
    url = simulator("--max-concurrent", "2", "--latency-ms", "500")
    answered, refused = split(at_once(url, 4))
    assert len(answered) == 2 and len(refused) == 2
    assert {err.type for err in refused} == {"concurrency"}
    for err in refused:
        assert err.response.headers["retry-after"] == "1"
        assert 200 <= int(err.response.headers["retry-after-ms"]) <= 500
    got = stats(url)
    assert got["accepted"] == 2 and got["max_in_flight_seen"] == 2
    assert got["throttled"] == 2 and got["throttled_by"]["concurrency"] == 2
    # Once the answers are out, their slots are free again.
    answered, refused = split(at_once(url, 2))
    assert len(answered) == 2 and not refused
    assert stats(url)["in_flight"] == 0


def test_tpm_charges_max_tokens_on_admission(simulator):
    url = simulator("--tpm", "6000")  # 100 tokens a second
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=10)
    with client:
        raw = client.chat.completions.with_raw_response.create(
            model="deepseek-chat", messages=MESSAGES, max_tokens=90
        )
        assert raw.headers["x-ratelimit-limit-tokens"] == "6000"
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 10
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="deepseek-chat", messages=MESSAGES, max_tokens=90)
    assert caught.value.type == "tokens"
    assert int(caught.value.response.headers["retry-after-ms"]) > 0
    assert stats(url)["throttled_by"] == {"requests": 0, "tokens": 1, "concurrency": 0}


def test_stats_reset_clears_the_limit_counts(simulator):
    url = simulator("--rpm", "60", "--burst", "1")
    split(at_once(url, 2))
    assert stats(url)["throttled"] == 1
    req = urllib.request.Request(url.removesuffix("/v1") + "/stats/reset", method="POST")
    with urllib.request.urlopen(req, timeout=5):
        pass
    got = stats(url)
    assert got["accepted"] == 0 and got["throttled"] == 0 and got["max_in_flight_seen"] == 0
    assert got["throttled_by"] == {"requests": 0, "tokens": 0, "concurrency": 0}
