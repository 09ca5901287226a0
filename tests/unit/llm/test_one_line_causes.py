"""A provider's error becomes a cause of one line that says the status once
(issue 21, point 9).

LiteLLM (and other proxies) put blank lines and tracebacks in their error
messages; the openai SDK's text repeats the status ("Error code: 429 - ...").
Causes are printed in one-line progress output and CLI errors and stored with the
job, so every path from an error body to a display is checked here: through the
real SDK and its error types (an in-memory HTTP transport), the stage records,
the events and the CLI's wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2
import openai
import pytest

from tests.helpers.llm_calls import MESSAGES, candidate_call
from tests.helpers.scripted_llm import CHOSEN, ScriptedLLM, make_plan
from tests.helpers.stage_calls import context, editor_review
from vpsweb.cli.live import JobState, why_failed
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.errors import (
    ONE_LINE_CHARS,
    PermanentLLMError,
    StageFailed,
    TransientLLMError,
    one_line,
)
from vpsweb.llm.client import OpenAICompatibleClient
from vpsweb.llm.provider_text import SAID_CHARS, provider_said
from vpsweb.stages.shared import described

LITELLM = (
    "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached\n\n"
    "Received Model Group=gpt-4o\nAvailable Model Group Fallbacks=None\n\n"
    'Traceback (most recent call last):\n  File "router.py", line 12, in call\n'
)


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


@pytest.fixture()
def clients() -> Iterator[list[OpenAICompatibleClient]]:
    made: list[OpenAICompatibleClient] = []
    yield made
    for client in made:
        client.close()


def fail_with(
    clients: list[OpenAICompatibleClient], cfg: AppConfig, *responses: httpx2.Response
) -> Exception:
    """The error the real client raises after these HTTP answers (no retries left)."""
    answers = list(responses)
    client = OpenAICompatibleClient(
        env={"DEEPSEEK_API_KEY": "sk-test-0123456789"},
        sleep=lambda _s: None,
        transport=httpx2.MockTransport(lambda _request: answers.pop(0)),
    )
    clients.append(client)
    call = candidate_call(cfg, retries=len(responses) - 1)
    with pytest.raises((TransientLLMError, PermanentLLMError)) as info:
        client.complete(call, MESSAGES)
    return info.value


def litellm_error(status: int) -> httpx2.Response:
    body = {"error": {"message": LITELLM, "type": "throttling", "param": None, "code": status}}
    return httpx2.Response(status, json=body)


@pytest.mark.parametrize("status", [429, 500, 400, 401])
def test_a_multi_line_provider_error_is_one_line_with_the_status_once(
    clients: list[OpenAICompatibleClient], cfg: AppConfig, status: int
) -> None:
    text = str(fail_with(clients, cfg, litellm_error(status)))
    assert "\n" not in text and "  " not in text
    assert text.count(str(status)) == 1, text  # "HTTP 429", not "... Error code: 429 -"
    assert "Error code" not in text
    assert f"HTTP {status}" in text
    assert "Rate limit reached Received Model Group=gpt-4o" in text  # the body's message
    assert "throttling" not in text  # the message, not a dump of the body


def test_the_cause_of_a_retried_429_says_the_status_once(
    clients: list[OpenAICompatibleClient], cfg: AppConfig
) -> None:
    text = str(fail_with(clients, cfg, litellm_error(429), litellm_error(429)))
    assert re.search(r": HTTP 429 after 2 attempt\(s\): litellm\.RateLimitError", text), text
    assert text.count("429") == 1


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (httpx2.Response(502, text="<html>\n<body>Bad gateway</body>\n</html>\n"), "<html> <body>"),
        (httpx2.Response(404, json={"detail": "Not\nFound"}), "Not Found"),
        (httpx2.Response(400, json={"error": "model\n\nunknown"}), "model unknown"),
        (httpx2.Response(503, content=b""), "Service Unavailable"),
        (httpx2.Response(400, json={"error": {"message": ""}}), "Bad Request"),
    ],
)
def test_other_error_bodies_are_said_once_on_one_line(
    clients: list[OpenAICompatibleClient], cfg: AppConfig, response: httpx2.Response, said: str
) -> None:
    text = str(fail_with(clients, cfg, response))
    assert "\n" not in text and "Error code" not in text
    assert said in text and text.count(str(response.status_code)) == 1


def test_a_huge_error_body_is_cut_to_a_bounded_line(
    clients: list[OpenAICompatibleClient], cfg: AppConfig
) -> None:
    body = {"error": {"message": "stack frame\n" * 5000}}
    text = str(fail_with(clients, cfg, httpx2.Response(400, json=body)))
    assert "\n" not in text
    assert len(text) < SAID_CHARS + 200 and text.endswith("…")


def test_provider_said_works_on_the_sdks_own_error_types() -> None:
    request = httpx2.Request("POST", "https://api.example/v1/chat/completions")
    response = httpx2.Response(
        429, request=request, json={"error": {"message": "slow\n\ndown sk-live-abcdef123"}}
    )
    exc = openai.RateLimitError(
        "Error code: 429 - slow\n\ndown", response=response, body=response.json()["error"]
    )
    assert provider_said(exc, "k") == "slow down [redacted key]"


def test_a_stage_failure_and_a_candidate_error_are_one_line(cfg: AppConfig) -> None:
    plan = make_plan(cfg)
    error = TransientLLMError(f"editor_review via x: HTTP 500: {LITELLM}", attempts=1)
    with pytest.raises(StageFailed) as info:
        editor_review(context(cfg, plan, ScriptedLLM(error)), CHOSEN)
    assert "\n" not in info.value.cause and "\n" not in str(info.value)
    assert "\n" not in described(error)


def test_events_and_cli_lines_never_carry_a_newline(cfg: AppConfig) -> None:
    event = ProgressEvent.from_fields(
        "1-0",
        {"event": EventKind.STAGE_FAILED.value, "stage": "Editor Review", "error": LITELLM},
    )
    assert "\n" not in event.error and event.error.startswith("litellm.RateLimitError")
    state = JobState.of("j", make_plan(cfg))
    assert "\n" not in why_failed(state, "Editor Review", LITELLM)


def test_one_line_collapses_and_bounds() -> None:
    assert one_line(" a\n\n b\t c \r\n") == "a b c"
    long = one_line("x " * 1000)
    assert len(long) == ONE_LINE_CHARS and long.endswith("…")
