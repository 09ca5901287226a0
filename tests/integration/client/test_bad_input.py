"""Every bad input gets a clear error and nothing is written: at submission, and for
job ids given to status, result, cancel and watch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.helpers.cli import run_cli
from tests.helpers.redis_server import start_redis
from vpsweb.client import Client
from vpsweb.errors import JobNotFound, RequestInvalid
from vpsweb.local.processes import RedisServer

pytestmark = pytest.mark.integration

GOOD: dict[str, Any] = {
    "poem": "The fog comes\non little cat feet.",
    "source_lang": "en",
    "target_lang": "zh-CN",
    "title": "Fog",
    "author": "Carl Sandburg",
    "offline": True,
}

# (case, changes to GOOD, a line the error must contain)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("poem not text", {"poem": 123}, "poem: Input should be a valid string"),
    ("poem a list", {"poem": ["a", "b"]}, "poem: Input should be a valid string"),
    ("poem empty", {"poem": ""}, "poem: the poem is empty; paste or load the poem's text"),
    ("poem only spaces", {"poem": " \n\t \n"}, "poem has no visible text"),
    ("poem only zero-width", {"poem": "\u200b\u200b\n"}, "poem has no visible text"),
    ("poem with NUL", {"poem": "a\x00b"}, "contains a control character ('\\x00' at position 1)"),
    ("poem with ESC", {"poem": "line\x1b[31m red"}, "contains a control character ('\\x1b'"),
    ("poem only controls", {"poem": "\x01\x02\x03"}, "contains a control character"),
    (
        "poem over 50,000",
        {"poem": "x" * 50_001},
        "the poem has 50,001 characters; the limit is 50,000",
    ),
    (
        "poem too long for the model",
        {"poem": "a long line of verse\n" * 700},
        "poem: too long for step initial_translation on deepseek-chat: its answer needs about",
    ),
    ("author with newline", {"author": "Li Bai\n</poet_name>"}, "author: must be a single line"),
    ("author with tags", {"author": "<b>Li Bai</b>"}, "author: must not contain '<' or '>'"),
    ("title with control", {"title": "Fog\x07"}, "title: contains a control character"),
    (
        "title too long",
        {"title": "t" * 501},
        "title: the title has 501 characters; the limit is 500",
    ),
    ("unknown source code", {"source_lang": "fr"}, "unsupported source language 'fr'"),
    ("unknown target name", {"target_lang": "Polish"}, "unsupported target language 'Polish'"),
    ("equal codes", {"source_lang": "en", "target_lang": "en"}, "are both 'en'"),
    ("equal name and code", {"source_lang": "English", "target_lang": "en"}, "are both 'en'"),
    ("parallel_count 0", {"parallel_count": 0}, "parallel_count must be between 1 and 8, got 0"),
    ("parallel_count 9", {"parallel_count": 9}, "parallel_count must be between 1 and 8, got 9"),
    (
        "parallel_count text",
        {"parallel_count": "3"},
        "parallel_count: Input should be a valid integer",
    ),
    (
        "parallel_count bool",
        {"parallel_count": True},
        "parallel_count: Input should be a valid integer",
    ),
    (
        "parallel_count float",
        {"parallel_count": 2.5},
        "parallel_count: Input should be a valid integer",
    ),
    ("unknown mode", {"workflow_mode": "fast"}, "workflow_mode: Input should be 'hybrid'"),
    (
        "unknown dial",
        {"strategy": {"tone": "warm"}},
        "strategy.tone: Extra inputs are not permitted",
    ),
    (
        "bad dial value",
        {"strategy": {"adaptation_level": "wild"}},
        "strategy.adaptation_level: Input should be 'foreignizing'",
    ),
    (
        "prosody over two lines",
        {"strategy": {"prosody_target": "rhymed\nquatrains"}},
        "strategy.prosody_target: must be a single line",
    ),
    (
        "few-shots too long",
        {"strategy": {"few_shots": "x" * 20_001}},
        "strategy.few_shots: the few-shot text has 20,001 characters; the limit is 20,000",
    ),
    (
        "briefing too long",
        {"background_briefing": "x" * 20_001},
        "background_briefing: the background briefing has 20,001 characters; the limit is 20,000",
    ),
    ("briefing with NUL", {"background_briefing": "about\x00it"}, "contains a control character"),
]

BAD_IDS = ["x:step:evaluation", "", "../../etc/passwd", "A" * 12, "0123456789abc", "job id"]


@pytest.fixture(scope="module")
def store() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


def contents(server: RedisServer) -> dict[str, Any]:
    """Every key with its type and dump: what "nothing was written" is measured on."""
    r = redis.Redis.from_url(server.url)
    return {key: (r.type(key), r.dump(key)) for key in r.scan_iter("*")}


def test_the_suite_covers_at_least_25_bad_inputs() -> None:
    assert len(CASES) + len(BAD_IDS) >= 25


@pytest.mark.parametrize(("case", "changes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_request_is_refused_and_nothing_is_written(
    store: RedisServer, case: str, changes: dict[str, Any], expected: str
) -> None:
    with Client(redis_url=store.url) as client:
        client.submit(**GOOD)  # the store is in use: something to leave unchanged
        before = contents(store)
        with pytest.raises(RequestInvalid) as info:
            client.submit(**{**GOOD, **changes})
        after = contents(store)
    assert any(expected in line for line in info.value.errors), info.value.errors
    assert after == before


def test_an_unknown_request_field_is_refused(store: RedisServer) -> None:
    with Client(redis_url=store.url) as client:
        before = contents(store)
        with pytest.raises(RequestInvalid, match="poet: Extra inputs are not permitted"):
            client.plan({**GOOD, "poet": "Sandburg"})
        assert contents(store) == before


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_malformed_job_ids_are_not_found_and_never_reach_redis(
    store: RedisServer, job_id: str
) -> None:
    r = redis.Redis.from_url(store.url)
    before = r.info("commandstats")
    with Client(redis_url=store.url) as client:
        for action in (client.get, client.cancel):
            with pytest.raises(JobNotFound, match="not found"):
                action(job_id)
    after = r.info("commandstats")
    # Only this INFO itself ran: no HGET/HGETALL with the raw id.
    assert {k: v["calls"] for k, v in after.items() if k != "cmdstat_info"} == {
        k: v["calls"] for k, v in before.items() if k != "cmdstat_info"
    }


@pytest.mark.parametrize("command", ["status", "result", "cancel", "watch"])
def test_the_cli_says_not_found_in_one_line(store: RedisServer, command: str) -> None:
    done = run_cli(command, "x:step:evaluation", "--redis-url", store.url, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "job 'x:step:evaluation' not found" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
