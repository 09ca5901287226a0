"""OpenAICompatibleClient behaviour that needs no server: endpoint and key resolution,
Retry-After parsing and jitter, and the retry loop, the deadline and cancellation
driven through an in-memory HTTP transport on the client's own event loop."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from tests.helpers.llm_calls import MESSAGES, candidate_call, plan_for
from tests.helpers.stage_calls import context, cost, translate_candidate
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.plan import StepCall
from vpsweb.errors import (
    BudgetReached,
    Cancelled,
    LLMError,
    LLMTimeout,
    MissingAPIKey,
    PermanentLLMError,
    TransientLLMError,
)
from vpsweb.llm.backoff import RETRY_AFTER_JITTER, backoff_s, retry_after_s
from vpsweb.llm.client import MAX_RETRY_AFTER_S, OpenAICompatibleClient
from vpsweb.llm.loop import POLL_S
from vpsweb.settings import DEFAULT_SIMULATOR_URL


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def call_on(cfg: AppConfig, model: str, **changes: Any) -> StepCall:
    """The translator call of an online plan, switched to another model."""
    call = plan_for(cfg, offline=False).candidates[0].call
    return call.model_copy(update={"model": model, **changes})


def where(client: OpenAICompatibleClient, call: StepCall) -> tuple[str, str]:
    """(base URL, key) as this worker would send the call."""
    endpoint = client.endpoint(call)
    return endpoint.base_url, client.api_key(endpoint)


# --- missing API key ------------------------------------------------------------------------


def test_missing_api_key_names_env_var_provider_and_model(cfg: AppConfig) -> None:
    plan = plan_for(cfg, offline=False)
    call = plan.candidates[0].call
    client = OpenAICompatibleClient(env={})
    with pytest.raises(MissingAPIKey) as info:
        client.complete(call, MESSAGES)
    msg = str(info.value)
    assert "DEEPSEEK_API_KEY" in msg
    assert "provider 'deepseek'" in msg
    assert "model 'deepseek-chat'" in msg
    assert "VPSWEB_OFFLINE=1" in msg  # tells the user what else they can do
    assert info.value.attempts == 0  # no call was made
    assert isinstance(info.value, LLMError)


@pytest.mark.parametrize("model", ["qwen-max", "gpt-4o-mini", "kimi-k2"])
def test_missing_key_for_other_providers(cfg: AppConfig, model: str) -> None:
    call = call_on(cfg, model)
    client = OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": "k"})
    endpoint = client.endpoint(call)
    with pytest.raises(MissingAPIKey) as info:
        client.api_key(endpoint)
    msg = str(info.value)
    assert endpoint.api_key_env is not None
    assert endpoint.api_key_env in msg
    assert f"provider {cfg.models.models[model].provider!r}" in msg
    assert f"model {model!r}" in msg


def test_blank_api_key_counts_as_missing(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).steps["evaluation"]
    with pytest.raises(MissingAPIKey, match="DEEPSEEK_API_KEY"):
        where(OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": "   "}), call)


def test_missing_key_makes_a_failed_candidate_not_a_crash(cfg: AppConfig) -> None:
    plan = plan_for(cfg, offline=False)
    ctx = context(cfg, plan, OpenAICompatibleClient(env={}))
    result = translate_candidate(ctx, 0)
    assert result.status == "failed"
    assert "DEEPSEEK_API_KEY" in (result.error or "")
    assert result.metrics is not None and result.metrics.attempts == 0


def test_missing_key_is_checked_before_cancel_check_or_network(cfg: AppConfig) -> None:
    calls: list[str] = []
    call = plan_for(cfg, offline=False).candidates[0].call
    with pytest.raises(MissingAPIKey):
        OpenAICompatibleClient(env={}).complete(call, MESSAGES, check=lambda: calls.append("x"))
    assert calls == []


# --- endpoint resolution ----------------------------------------------------------------------


def test_endpoint_with_key(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    client = OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": " sk-abc \n"})
    assert where(client, call) == ("https://api.deepseek.com/v1", "sk-abc")


def test_endpoint_for_a_provider_without_key(cfg: AppConfig) -> None:
    call = call_on(cfg, "ollama-qwen2.5")
    assert where(OpenAICompatibleClient(env={}), call) == ("http://localhost:11434/v1", "none")


def test_endpoint_base_url_env_override(cfg: AppConfig) -> None:
    call = call_on(cfg, "ollama-qwen2.5")
    client = OpenAICompatibleClient(env={"OLLAMA_BASE_URL": "http://gpu-box:11434/v1"})
    assert where(client, call) == ("http://gpu-box:11434/v1", "none")
    # An empty override is ignored.
    assert where(OpenAICompatibleClient(env={"OLLAMA_BASE_URL": ""}), call)[0] == (
        "http://localhost:11434/v1"
    )


def test_offline_plan_goes_to_the_simulator(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=True).candidates[0].call
    assert where(OpenAICompatibleClient(env={}), call) == ("http://127.0.0.1:8765/v1", "offline")
    env = {"VPSWEB_SIMULATOR_URL": "http://127.0.0.1:9999/v1"}
    assert where(OpenAICompatibleClient(env=env), call) == ("http://127.0.0.1:9999/v1", "offline")


@pytest.mark.parametrize("flag", ["1", "true", "YES", "on"])
def test_offline_env_overrides_an_online_plan(cfg: AppConfig, flag: str) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    client = OpenAICompatibleClient(env={"VPSWEB_OFFLINE": flag})
    assert where(client, call) == (DEFAULT_SIMULATOR_URL, "offline")
    env = {"VPSWEB_OFFLINE": flag, "VPSWEB_SIMULATOR_URL": "http://sim:1/v1"}
    assert where(OpenAICompatibleClient(env=env), call) == ("http://sim:1/v1", "offline")


def test_offline_env_false_still_needs_a_key(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    with pytest.raises(MissingAPIKey):
        where(OpenAICompatibleClient(env={"VPSWEB_OFFLINE": "0"}), call)


# --- Retry-After -------------------------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def test_retry_after_absent() -> None:
    assert retry_after_s(None) is None
    assert retry_after_s({}) is None
    assert retry_after_s({"x-other": "3"}) is None


def test_retry_after_ms() -> None:
    assert retry_after_s({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_s({"retry-after-ms": "250.5"}) == 0.2505


def test_retry_after_ms_wins_over_seconds() -> None:
    assert retry_after_s({"retry-after-ms": "300", "retry-after": "9"}) == 0.3


def test_retry_after_bad_ms_falls_back_to_seconds() -> None:
    assert retry_after_s({"retry-after-ms": "soon", "retry-after": "4"}) == 4.0


def testretry_after_seconds() -> None:
    assert retry_after_s({"retry-after": "7"}) == 7.0
    assert retry_after_s({"retry-after": "0.5"}) == 0.5


def test_retry_after_http_date() -> None:
    delay = retry_after_s({"retry-after": http_date(30)})
    assert delay is not None
    assert 27 <= delay <= 31  # HTTP dates have one-second resolution


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_s({"retry-after": http_date(-3600)}) == 0.0


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "100000"},
        {"retry-after-ms": "9999999"},
        {"retry-after": "inf"},
    ],
)
def test_retry_after_is_capped_at_120(headers: dict[str, str]) -> None:
    assert MAX_RETRY_AFTER_S == 120.0
    assert retry_after_s(headers) == 120.0


def test_retry_after_http_date_far_away_is_capped() -> None:
    assert retry_after_s({"retry-after": http_date(86400)}) == 120.0


def test_retry_after_works_with_case_insensitive_sdk_headers() -> None:
    headers = httpx2.Headers({"Retry-After-Ms": "2000"})
    assert retry_after_s(headers) == 2.0
    assert retry_after_s(httpx2.Headers({"Retry-After": "3"})) == 3.0


def test_retry_after_garbage_is_ignored() -> None:
    assert retry_after_s({"retry-after": "soon"}) is None


@pytest.mark.parametrize("headers", [{"retry-after": "-5"}, {"retry-after-ms": "-100"}])
def test_retry_after_is_never_negative(headers: dict[str, str]) -> None:
    delay = retry_after_s(headers)
    assert delay is None or delay >= 0


# --- jitter ------------------------------------------------------------------------------------


def test_retry_after_is_honoured_and_only_ever_stretched() -> None:
    assert backoff_s(0, 2.0, base_s=0.5, max_s=30, rand=lambda: 0.0) == 2.0
    top = backoff_s(0, 2.0, base_s=0.5, max_s=30, rand=lambda: 0.999999)
    assert 2.0 < top < 2.0 * (1 + RETRY_AFTER_JITTER)
    assert pytest.approx(0.2) == RETRY_AFTER_JITTER
    for _ in range(500):
        assert 2.0 <= backoff_s(3, 2.0, base_s=0.5, max_s=30) <= 2.4


def test_jittered_retry_after_stays_within_the_cap() -> None:
    assert backoff_s(0, 110.0, base_s=0.5, max_s=30, rand=lambda: 0.999) == MAX_RETRY_AFTER_S
    assert backoff_s(0, MAX_RETRY_AFTER_S, base_s=0.5, max_s=30) == MAX_RETRY_AFTER_S
    assert backoff_s(0, 0.0, base_s=0.5, max_s=30) == 0.0  # "now" stays now


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 20])
def test_exponential_backoff_keeps_its_half_to_full_jitter(attempt: int) -> None:
    full = min(30.0, 0.5 * 2**attempt)
    assert backoff_s(attempt, None, base_s=0.5, max_s=30, rand=lambda: 0.0) == full / 2
    assert backoff_s(attempt, None, base_s=0.5, max_s=30, rand=lambda: 0.999999) < full
    draws = [backoff_s(attempt, None, base_s=0.5, max_s=30) for _ in range(300)]
    assert all(full / 2 <= d < full for d in draws)
    assert len(set(draws)) > 1  # really jittered


# --- the retry loop, through an in-memory transport (no server, no network) -------------------

Handler = Callable[[httpx2.Request], Any]


def ok_body(content: str = "hello", prompt: int = 1000, completion: int = 500) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "deepseek-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


class Transport:
    """Plays back scripted HTTP responses (or handlers, sync or async) and records the
    requests; it runs on the client's event loop thread."""

    def __init__(self, *responses: httpx2.Response | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> Any:
        self.requests.append(request)
        response = self.responses.pop(0)
        return response(request) if callable(response) else response


@pytest.fixture()
def make_client() -> Iterator[Callable[..., OpenAICompatibleClient]]:
    """Clients on an in-memory transport; all are closed, and no loop thread outlives
    its test."""
    made: list[OpenAICompatibleClient] = []

    def make(
        transport: Transport, sleeps: list[float], key: str = "k", **options: Any
    ) -> OpenAICompatibleClient:
        client = OpenAICompatibleClient(
            env={"DEEPSEEK_API_KEY": key, **options.pop("env", {})},
            sleep=sleeps.append,
            transport=httpx2.MockTransport(transport),
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
    assert loop_threads() == []


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vpsweb-llm-")]


def error(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers=headers or {}, json={"error": {"message": f"e{status}"}})


def test_complete_success_costs_the_planned_model(cfg: AppConfig, make_client) -> None:
    call = candidate_call(cfg)
    transport = Transport(httpx2.Response(200, json=ok_body("hi", 1000, 500)))
    sleeps: list[float] = []
    done = make_client(transport, sleeps, key="sk-1").complete(call, MESSAGES)
    assert done.content == "hi" and done.reasoning_content is None
    assert done.attempts == 1
    assert done.usage == cost(call, 1000, 500)
    assert done.usage.cost == 0.0035
    assert done.latency_s >= 0 and done.sim_latency_ms is None
    assert sleeps == []
    request = transport.requests[0]
    assert str(request.url) == "https://api.deepseek.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-1"
    body = json.loads(request.content)
    assert body["model"] == "deepseek-chat"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == call.temperature
    assert body["max_tokens"] == call.max_tokens


def test_simulator_latency_header_and_reasoning_are_kept(cfg: AppConfig, make_client) -> None:
    body = ok_body("answer")
    body["choices"][0]["message"]["reasoning_content"] = "thinking"
    reply = httpx2.Response(200, json=body, headers={"x-vpsweb-latency-ms": "12.5"})
    done = make_client(Transport(reply), []).complete(candidate_call(cfg), MESSAGES)
    assert (done.content, done.reasoning_content, done.sim_latency_ms) == (
        "answer",
        "thinking",
        12.5,
    )


def test_offline_calls_go_to_the_simulator_url(cfg: AppConfig, make_client) -> None:
    transport = Transport(httpx2.Response(200, json=ok_body()))
    env = {"VPSWEB_OFFLINE": "1", "VPSWEB_SIMULATOR_URL": "http://sim.test:9/v1"}
    make_client(transport, [], env=env).complete(candidate_call(cfg), MESSAGES)
    request = transport.requests[0]
    assert str(request.url) == "http://sim.test:9/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer offline"  # never the real key


def test_complete_honours_retry_after_on_429(cfg: AppConfig, make_client) -> None:
    call = candidate_call(cfg)
    transport = Transport(error(429, {"retry-after": "2"}), httpx2.Response(200, json=ok_body()))
    sleeps: list[float] = []
    done = make_client(transport, sleeps).complete(call, MESSAGES)
    assert done.attempts == 2
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.4  # the server's wait, jittered up
    assert len(transport.requests) == 2


def test_complete_gives_up_after_the_retry_budget(cfg: AppConfig, make_client) -> None:
    call = candidate_call(cfg, retries=2)
    transport = Transport(error(503), error(502), error(500))
    sleeps: list[float] = []
    with pytest.raises(TransientLLMError) as info:
        make_client(transport, sleeps).complete(call, MESSAGES)
    assert info.value.attempts == 3
    assert "HTTP 500" in str(info.value)
    assert len(transport.requests) == 3
    assert len(sleeps) == 2  # no sleep after the last attempt
    assert 0.25 <= sleeps[0] < 0.5 and 0.5 <= sleeps[1] < 1.0  # exponential, jittered


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_complete_never_retries_4xx(cfg: AppConfig, make_client, status: int) -> None:
    call = candidate_call(cfg)
    transport = Transport(error(status))
    sleeps: list[float] = []
    with pytest.raises(PermanentLLMError) as info:
        make_client(transport, sleeps).complete(call, MESSAGES)
    assert info.value.status == status
    assert info.value.attempts == 1
    assert len(transport.requests) == 1
    assert sleeps == []
    assert ("check the API key" in str(info.value)) == (status in (401, 403))


def test_error_texts_never_carry_the_key(cfg: AppConfig, make_client) -> None:
    key = "sk-live-SECRET-0123456789"
    echo = httpx2.Response(401, json={"error": {"message": f"bad key {key}"}})
    with pytest.raises(PermanentLLMError) as info:
        make_client(Transport(echo), [], key=key).complete(candidate_call(cfg), MESSAGES)
    assert "SECRET" not in str(info.value) and "[redacted]" in str(info.value)


def test_complete_calls_check_before_every_attempt(cfg: AppConfig, make_client) -> None:
    call = candidate_call(cfg)
    transport = Transport(error(500), httpx2.Response(200, json=ok_body()))
    checks: list[int] = []
    client = make_client(transport, [])
    client.complete(call, MESSAGES, check=lambda: checks.append(len(transport.requests)))
    assert checks == [0, 1]


def test_garbage_retry_after_on_503_is_a_transient_error(cfg: AppConfig, make_client) -> None:
    call = candidate_call(cfg, retries=1)
    transport = Transport(error(503, {"retry-after": "later"}), error(503, {"retry-after": "x"}))
    sleeps: list[float] = []
    with pytest.raises(TransientLLMError):
        make_client(transport, sleeps).complete(call, MESSAGES)
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] < 0.5  # our own back-off instead


def test_negative_retry_after_never_sleeps_negative(cfg: AppConfig, make_client) -> None:
    call = candidate_call(cfg)
    transport = Transport(error(429, {"retry-after": "-5"}), httpx2.Response(200, json=ok_body()))
    sleeps: list[float] = []
    make_client(transport, sleeps).complete(call, MESSAGES)
    assert sleeps == [0.0]


def test_connection_errors_are_retried(cfg: AppConfig, make_client) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    call = candidate_call(cfg, retries=1)
    done = make_client(Transport(refuse, httpx2.Response(200, json=ok_body())), []).complete(
        call, MESSAGES
    )
    assert done.attempts == 2
    with pytest.raises(TransientLLMError) as info:
        make_client(Transport(refuse, refuse), []).complete(call, MESSAGES)
    assert "cannot connect to https://api.deepseek.com/v1" in str(info.value)
    assert "connection refused" in str(info.value) and info.value.attempts == 2


# --- answers that are not JSON -------------------------------------------------------------


HTML = "<html><body>Bad gateway</body></html>"


def test_a_200_html_page_is_retried(cfg: AppConfig, make_client) -> None:
    page = httpx2.Response(200, text=HTML, headers={"content-type": "text/html"})
    transport = Transport(page, httpx2.Response(200, json=ok_body("fine")))
    sleeps: list[float] = []
    done = make_client(transport, sleeps).complete(candidate_call(cfg), MESSAGES)
    assert done.content == "fine" and done.attempts == 2 and len(sleeps) == 1


def test_a_200_that_is_never_json_fails_as_transient(cfg: AppConfig, make_client) -> None:
    key = "sk-live-SECRET-0123456789"
    page = httpx2.Response(200, text=f"<p>{key}</p>", headers={"content-type": "text/html"})
    broken = httpx2.Response(200, text="{not json", headers={"content-type": "application/json"})
    call = candidate_call(cfg, retries=1)
    with pytest.raises(TransientLLMError) as info:
        make_client(Transport(page, broken), [], key=key).complete(call, MESSAGES)
    assert info.value.attempts == 2
    assert "HTTP 200 but the answer was not JSON (application/json)" in str(info.value)
    with pytest.raises(TransientLLMError) as info:
        make_client(Transport(page), [], key=key).complete(candidate_call(cfg, retries=0), MESSAGES)
    assert "not JSON (text/html)" in str(info.value) and "SECRET" not in str(info.value)


# --- deadline and cancellation -----------------------------------------------------------


def never_answering(cancelled: threading.Event) -> Handler:
    """An async handler that holds the request until its task is cancelled."""

    async def handler(request: httpx2.Request) -> httpx2.Response:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    return handler


def test_the_deadline_abandons_the_request(cfg: AppConfig, make_client) -> None:
    cancelled = threading.Event()
    call = candidate_call(cfg, timeout_s=0.3, retries=1)
    transport = Transport(never_answering(cancelled), never_answering(threading.Event()))
    with pytest.raises(LLMTimeout) as info:
        make_client(transport, []).complete(call, MESSAGES)
    assert "no answer within 0.3s (attempt 2 of 2)" in str(info.value)
    assert info.value.attempts == 2 and len(transport.requests) == 2
    assert cancelled.wait(5)  # the first attempt's task was cancelled, not left running


def test_a_cancel_check_that_raises_abandons_the_request(cfg: AppConfig, make_client) -> None:
    cancelled = threading.Event()
    checks: list[float] = []

    def check() -> None:
        checks.append(time.monotonic())
        if len(checks) > 2:  # before the attempt, then once while in flight
            raise Cancelled("job ended")

    call = candidate_call(cfg, timeout_s=60)
    with pytest.raises(Cancelled):
        make_client(Transport(never_answering(cancelled)), []).complete(call, MESSAGES, check=check)
    assert cancelled.wait(5)
    assert len(checks) == 3


def test_a_budget_reached_during_a_call_lets_the_paid_call_finish(
    cfg: AppConfig, make_client
) -> None:
    checks: list[float] = []

    def check() -> None:
        checks.append(time.monotonic())
        if len(checks) > 1:  # spent by the job's other calls while this one is out
            raise BudgetReached(1.2, 1.0, "CNY")

    async def slow_answer(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(3 * POLL_S)
        return httpx2.Response(200, json=ok_body("paid for"))

    call = candidate_call(cfg, timeout_s=60)
    client = make_client(Transport(slow_answer), [])
    done = client.complete(call, MESSAGES, check=check)
    assert done.content == "paid for" and len(checks) >= 2  # checked while in flight
    with pytest.raises(BudgetReached):  # but no new call
        client.complete(call, MESSAGES, check=check)


def test_backoff_with_a_check_is_sliced_and_cancellable(cfg: AppConfig, make_client) -> None:
    transport = Transport(error(429, {"retry-after": "30"}), httpx2.Response(200, json=ok_body()))
    sleeps: list[float] = []
    checks: list[int] = []

    def check() -> None:
        checks.append(len(sleeps))
        if len(sleeps) == 4:
            raise Cancelled("job ended")

    with pytest.raises(Cancelled):
        make_client(transport, sleeps).complete(candidate_call(cfg), MESSAGES, check=check)
    assert sleeps == [POLL_S] * 4  # 30 s asked, stopped after four slices
    assert checks == [0, 1, 2, 3, 4]
    assert len(transport.requests) == 1  # no second attempt was paid for


def test_a_sliced_backoff_adds_up_to_the_whole_wait(cfg: AppConfig, make_client) -> None:
    transport = Transport(
        error(429, {"retry-after-ms": "1700"}), httpx2.Response(200, json=ok_body())
    )
    sleeps: list[float] = []
    make_client(transport, sleeps).complete(candidate_call(cfg), MESSAGES, check=lambda: None)
    assert all(0 < s <= POLL_S for s in sleeps) and len(sleeps) >= 4
    assert 1.7 <= sum(sleeps) <= 1.7 * 1.2 + 1e-9


# --- lifecycle ----------------------------------------------------------------------------


def test_the_loop_starts_on_first_use_and_close_stops_it(cfg: AppConfig, make_client) -> None:
    transport = Transport(
        httpx2.Response(200, json=ok_body()), httpx2.Response(200, json=ok_body())
    )
    client = make_client(transport, [])
    assert loop_threads() == []  # constructing a client starts nothing
    client.complete(candidate_call(cfg), MESSAGES)
    (thread,) = loop_threads()
    assert thread.daemon  # never keeps a worker process alive
    client.close()
    assert not thread.is_alive()
    client.complete(candidate_call(cfg), MESSAGES)  # a closed client starts afresh
    assert len(loop_threads()) == 1


def test_a_forgotten_client_stops_its_loop(cfg: AppConfig) -> None:
    client = OpenAICompatibleClient(
        env={"DEEPSEEK_API_KEY": "k"},
        transport=httpx2.MockTransport(Transport(httpx2.Response(200, json=ok_body()))),
    )
    client.complete(candidate_call(cfg), MESSAGES)
    (thread,) = loop_threads()
    del client
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_a_model_that_ignores_sampling_is_sent_no_temperature(
    cfg: AppConfig, make_client: Callable[..., OpenAICompatibleClient]
) -> None:
    """deepseek-reasoner ignores temperature: none is sent and none is recorded, so a
    variant's temperature is not mistaken for a difference; deepseek-chat gets its own."""
    transport = Transport(
        httpx2.Response(200, json=ok_body()), httpx2.Response(200, json=ok_body())
    )
    client = make_client(transport, [])
    chat = candidate_call(cfg, temperature=0.9)
    reasoner = candidate_call(cfg, model="deepseek-reasoner", temperature=0.9)
    client.complete(chat, MESSAGES)
    done = client.complete(reasoner, MESSAGES)
    sent = [json.loads(r.content) for r in transport.requests]
    assert sent[0]["temperature"] == 0.9 and "temperature" not in sent[1]
    assert sent[1]["model"] == "deepseek-reasoner"
    assert done.model is not None and done.model.temperature is None
