"""OpenAICompatibleClient behaviour that needs no server: endpoint and key resolution,
Retry-After parsing, and the retry loop driven through an in-memory HTTP transport."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from tests.stage_calls import translate_candidate
from vpsweb.config import AppConfig, load_config
from vpsweb.errors import LLMError, MissingAPIKey, PermanentLLMError, TransientLLMError
from vpsweb.llm.client import (
    MAX_RETRY_AFTER_S,
    OpenAICompatibleClient,
    _retry_after_s,
)
from vpsweb.plan import JobPlan, StepCall, build_plan
from vpsweb.settings import DEFAULT_SIMULATOR_URL
from vpsweb.stages import StageContext

POEM = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。"
MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def plan_for(cfg: AppConfig, *, offline: bool, **changes: Any) -> JobPlan:
    data: dict[str, Any] = {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en"}
    data.update(changes)
    return build_plan(data, cfg, job_id="t", offline=offline)


def call_on(cfg: AppConfig, model: str, **changes: Any) -> StepCall:
    """The translator call of an online plan, switched to another model's provider."""
    plan = plan_for(cfg, offline=False)
    entry = cfg.models.models[model]
    provider = cfg.models.providers[entry.provider]
    call = plan.candidates[0].call
    info = call.model.model_copy(
        update={"model": model, "provider": entry.provider, "api_model": entry.name}
    )
    return call.model_copy(
        update={
            "model": info,
            "base_url": provider.base_url,
            "base_url_env": provider.base_url_env,
            "api_key_env": provider.api_key_env,
            "price": entry.price,
            **changes,
        }
    )


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
    with pytest.raises(MissingAPIKey) as info:
        OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": "k"})._endpoint(call)
    msg = str(info.value)
    assert call.api_key_env is not None
    assert call.api_key_env in msg
    assert f"provider {call.model.provider!r}" in msg
    assert f"model {model!r}" in msg


def test_blank_api_key_counts_as_missing(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).steps["evaluation"]
    with pytest.raises(MissingAPIKey, match="DEEPSEEK_API_KEY"):
        OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": "   "})._endpoint(call)


def test_missing_key_makes_a_failed_candidate_not_a_crash(cfg: AppConfig) -> None:
    plan = plan_for(cfg, offline=False)
    ctx = StageContext(plan=plan, prompts=cfg.prompts, llm=OpenAICompatibleClient(env={}))
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
    assert client._endpoint(call) == ("https://api.deepseek.com/v1", "sk-abc")


def test_endpoint_for_a_provider_without_key(cfg: AppConfig) -> None:
    call = call_on(cfg, "ollama-qwen2.5")
    assert call.api_key_env is None
    assert OpenAICompatibleClient(env={})._endpoint(call) == ("http://localhost:11434/v1", "none")


def test_endpoint_base_url_env_override(cfg: AppConfig) -> None:
    call = call_on(cfg, "ollama-qwen2.5")
    client = OpenAICompatibleClient(env={"OLLAMA_BASE_URL": "http://gpu-box:11434/v1"})
    assert client._endpoint(call) == ("http://gpu-box:11434/v1", "none")
    # An empty override is ignored.
    assert OpenAICompatibleClient(env={"OLLAMA_BASE_URL": ""})._endpoint(call)[0] == (
        "http://localhost:11434/v1"
    )


def test_offline_plan_goes_to_the_simulator(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=True).candidates[0].call
    assert OpenAICompatibleClient(env={})._endpoint(call) == ("http://127.0.0.1:8765/v1", "none")
    env = {"VPSWEB_SIMULATOR_URL": "http://127.0.0.1:9999/v1"}
    assert OpenAICompatibleClient(env=env)._endpoint(call) == ("http://127.0.0.1:9999/v1", "none")


@pytest.mark.parametrize("flag", ["1", "true", "YES", "on"])
def test_offline_env_overrides_an_online_plan(cfg: AppConfig, flag: str) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    client = OpenAICompatibleClient(env={"VPSWEB_OFFLINE": flag})
    assert client._endpoint(call) == (DEFAULT_SIMULATOR_URL, "offline")
    env = {"VPSWEB_OFFLINE": flag, "VPSWEB_SIMULATOR_URL": "http://sim:1/v1"}
    assert OpenAICompatibleClient(env=env)._endpoint(call) == ("http://sim:1/v1", "offline")


def test_offline_env_false_still_needs_a_key(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    with pytest.raises(MissingAPIKey):
        OpenAICompatibleClient(env={"VPSWEB_OFFLINE": "0"})._endpoint(call)


# --- Retry-After -------------------------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def test_retry_after_absent() -> None:
    assert _retry_after_s(None) is None
    assert _retry_after_s({}) is None
    assert _retry_after_s({"x-other": "3"}) is None


def test_retry_after_ms() -> None:
    assert _retry_after_s({"retry-after-ms": "1500"}) == 1.5
    assert _retry_after_s({"retry-after-ms": "250.5"}) == 0.2505


def test_retry_after_ms_wins_over_seconds() -> None:
    assert _retry_after_s({"retry-after-ms": "300", "retry-after": "9"}) == 0.3


def test_retry_after_bad_ms_falls_back_to_seconds() -> None:
    assert _retry_after_s({"retry-after-ms": "soon", "retry-after": "4"}) == 4.0


def test_retry_after_seconds() -> None:
    assert _retry_after_s({"retry-after": "7"}) == 7.0
    assert _retry_after_s({"retry-after": "0.5"}) == 0.5


def test_retry_after_http_date() -> None:
    delay = _retry_after_s({"retry-after": http_date(30)})
    assert delay is not None
    assert 27 <= delay <= 31  # HTTP dates have one-second resolution


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert _retry_after_s({"retry-after": http_date(-3600)}) == 0.0


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
    assert _retry_after_s(headers) == 120.0


def test_retry_after_http_date_far_away_is_capped() -> None:
    assert _retry_after_s({"retry-after": http_date(86400)}) == 120.0


def test_retry_after_works_with_case_insensitive_sdk_headers() -> None:
    headers = httpx2.Headers({"Retry-After-Ms": "2000"})
    assert _retry_after_s(headers) == 2.0
    assert _retry_after_s(httpx2.Headers({"Retry-After": "3"})) == 3.0


def test_retry_after_garbage_is_ignored() -> None:
    assert _retry_after_s({"retry-after": "soon"}) is None


@pytest.mark.parametrize("headers", [{"retry-after": "-5"}, {"retry-after-ms": "-100"}])
def test_retry_after_is_never_negative(headers: dict[str, str]) -> None:
    delay = _retry_after_s(headers)
    assert delay is None or delay >= 0


# --- the retry loop, through an in-memory transport (no server, no network) -------------------


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
    """Plays back scripted HTTP responses and records the requests."""

    def __init__(self, *responses: httpx2.Response | Callable[[httpx2.Request], httpx2.Response]):
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        response = self.responses.pop(0)
        return response(request) if callable(response) else response


def client_with(
    call: StepCall, key: str, transport: Transport, sleeps: list[float]
) -> OpenAICompatibleClient:
    client = OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": key}, sleep=sleeps.append)
    base_url, resolved = client._endpoint(call)
    client._clients[(base_url, resolved)] = openai.OpenAI(
        base_url=base_url,
        api_key=resolved,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(transport)),
    )
    return client


def error(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers=headers or {}, json={"error": {"message": f"e{status}"}})


def test_complete_success_costs_the_planned_model(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    transport = Transport(httpx2.Response(200, json=ok_body("hi", 1000, 500)))
    sleeps: list[float] = []
    done = client_with(call, "sk-1", transport, sleeps).complete(call, MESSAGES)
    assert done.content == "hi"
    assert done.attempts == 1
    assert done.usage == call.cost(1000, 500)
    assert done.usage.cost == 0.0035
    assert sleeps == []
    request = transport.requests[0]
    assert str(request.url) == "https://api.deepseek.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-1"
    body = json.loads(request.content)
    assert body["model"] == "deepseek-chat"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == call.temperature
    assert body["max_tokens"] == call.max_tokens


def test_complete_honours_retry_after_on_429(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    transport = Transport(error(429, {"retry-after": "2"}), httpx2.Response(200, json=ok_body()))
    sleeps: list[float] = []
    done = client_with(call, "k", transport, sleeps).complete(call, MESSAGES)
    assert done.attempts == 2
    assert sleeps == [2.0]
    assert len(transport.requests) == 2


def test_complete_gives_up_after_the_retry_budget(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call.model_copy(update={"retries": 2})
    transport = Transport(error(503), error(502), error(500))
    sleeps: list[float] = []
    with pytest.raises(TransientLLMError) as info:
        client_with(call, "k", transport, sleeps).complete(call, MESSAGES)
    assert info.value.attempts == 3
    assert "HTTP 500" in str(info.value)
    assert len(transport.requests) == 3
    assert len(sleeps) == 2  # no sleep after the last attempt
    assert all(s >= 0 for s in sleeps)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_complete_never_retries_4xx(cfg: AppConfig, status: int) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    transport = Transport(error(status))
    sleeps: list[float] = []
    with pytest.raises(PermanentLLMError) as info:
        client_with(call, "k", transport, sleeps).complete(call, MESSAGES)
    assert info.value.status == status
    assert info.value.attempts == 1
    assert len(transport.requests) == 1
    assert sleeps == []
    assert ("check the API key" in str(info.value)) == (status in (401, 403))


def test_complete_calls_check_before_every_attempt(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    transport = Transport(error(500), httpx2.Response(200, json=ok_body()))
    checks: list[int] = []
    sleeps: list[float] = []
    client = client_with(call, "k", transport, sleeps)
    client.complete(call, MESSAGES, check=lambda: checks.append(len(transport.requests)))
    assert checks == [0, 1]


def test_garbage_retry_after_on_503_is_a_transient_error(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call.model_copy(update={"retries": 1})
    transport = Transport(error(503, {"retry-after": "later"}), error(503, {"retry-after": "x"}))
    sleeps: list[float] = []
    with pytest.raises(TransientLLMError):
        client_with(call, "k", transport, sleeps).complete(call, MESSAGES)


def test_negative_retry_after_never_sleeps_negative(cfg: AppConfig) -> None:
    call = plan_for(cfg, offline=False).candidates[0].call
    transport = Transport(error(429, {"retry-after": "-5"}), httpx2.Response(200, json=ok_body()))
    sleeps: list[float] = []
    client_with(call, "k", transport, sleeps).complete(call, MESSAGES)
    assert all(s >= 0 for s in sleeps), sleeps
