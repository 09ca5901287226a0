"""The one path to LLMs: an OpenAI-compatible client on the ``openai`` SDK.

Exactly one retry layer lives here (the SDK's own retries are switched off; the
original application nested two and could make ~16 calls per step). Only what
is transient is retried: connection errors, timeouts, 429 (honouring
Retry-After) and 5xx. 4xx answers are final.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import openai

from vpsweb import settings
from vpsweb.errors import LLMTimeout, MissingAPIKey, PermanentLLMError, TransientLLMError
from vpsweb.models import Usage

if TYPE_CHECKING:  # pragma: no cover - the plan module imports the stages, which import this
    from vpsweb.plan import StepCall

SIM_LATENCY_HEADER = "x-vpsweb-latency-ms"
MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True)
class Completion:
    content: str
    reasoning_content: str | None
    usage: Usage
    latency_s: float  # wall time of the successful HTTP call
    attempts: int  # HTTP calls made, including failed ones
    sim_latency_ms: float | None = None  # latency the simulator applied, if it is one


class LLMClient(Protocol):
    """What stages need; tests pass a double, production passes OpenAICompatibleClient."""

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion: ...


_KEYLIKE = re.compile(r"\b(sk|ak|key)[-_][A-Za-z0-9*_\-.]{4,}", re.IGNORECASE)


def redact(text: str, key: str) -> str:
    """Provider error texts may echo (part of) the API key; such text ends up in job
    errors, Celery results and Flower, so the key and key-like tokens are masked."""
    if key and len(key) >= 6:
        text = text.replace(key, "[redacted]")
    return _KEYLIKE.sub("[redacted key]", text)


def _seconds(value: float) -> float | None:
    """A usable wait: at least 0, at most MAX_RETRY_AFTER_S; NaN is no answer."""
    if math.isnan(value):
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER_S)


def _retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait (retry-after-ms, then Retry-After seconds or date);
    None when absent or unreadable, so the caller falls back to its own back-off."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            if (wait := _seconds(float(ms) / 1000)) is not None:
                return wait
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _seconds(parsed.timestamp() - time.time())


class OpenAICompatibleClient:
    """Thread-safe; one SDK client per (base_url, key) is reused across calls.

    Options (keyword-only):
      env: where API keys and URL overrides are read (default os.environ). Keys are
        read here, in the worker, and never travel with the job.
      sleep: the back-off sleep (tests pass a recorder).
      backoff_base_s / backoff_max_s: exponential back-off when no Retry-After.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._env = env if env is not None else os.environ
        self._sleep = sleep
        self._base = backoff_base_s
        self._max = backoff_max_s
        self._clients: dict[tuple[str, str], openai.OpenAI] = {}
        self._lock = threading.Lock()

    def _endpoint(self, call: StepCall) -> tuple[str, str]:
        base_url = call.base_url
        if call.base_url_env and self._env.get(call.base_url_env):
            base_url = self._env[call.base_url_env]
        if settings.offline(self._env):
            return settings.simulator_url(self._env), "offline"
        if call.api_key_env is None:
            return base_url, "none"
        key = self._env.get(call.api_key_env, "").strip()
        if not key:
            raise MissingAPIKey(
                f"no API key for model {call.model.model!r} (provider {call.model.provider!r}): "
                f"set {call.api_key_env} in the worker's environment, or run offline "
                f"with {settings.OFFLINE_ENV}=1 / --offline"
            )
        return base_url, key

    def _sdk(self, base_url: str, key: str) -> openai.OpenAI:
        with self._lock:
            client = self._clients.get((base_url, key))
            if client is None:
                client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
                self._clients[(base_url, key)] = client
            return client

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return min(self._max, self._base * 2**attempt) * (0.5 + random.random() / 2)

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], None] | None = None,
    ) -> Completion:
        base_url, key = self._endpoint(call)
        sdk = self._sdk(base_url, key)
        kwargs: dict[str, Any] = {
            "model": call.model.api_model,
            "messages": messages,
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
            "timeout": call.timeout_s,
        }
        if call.stop:
            kwargs["stop"] = call.stop
        where = f"{call.step} via {call.model.provider}/{call.model.api_model}"
        last: Exception | None = None
        for attempt in range(call.retries + 1):
            if check is not None:
                check()
            started = time.monotonic()
            retry_after: float | None = None
            try:
                raw = sdk.chat.completions.with_raw_response.create(**kwargs)
            except openai.APITimeoutError as exc:
                last = LLMTimeout(
                    f"{where}: no answer within {call.timeout_s:g}s "
                    f"(attempt {attempt + 1} of {call.retries + 1})",
                    attempts=attempt + 1,
                )
                last.__cause__ = exc
            except openai.APIConnectionError as exc:
                last = TransientLLMError(
                    f"{where}: cannot connect to {base_url}: {exc}", attempts=attempt + 1
                )
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status == 429 or status >= 500:
                    retry_after = _retry_after_s(exc.response.headers)
                    last = TransientLLMError(
                        f"{where}: HTTP {status} after {attempt + 1} attempt(s): "
                        f"{redact(exc.message, key)}",
                        attempts=attempt + 1,
                    )
                else:
                    hint = " (check the API key)" if status in (401, 403) else ""
                    raise PermanentLLMError(
                        f"{where}: HTTP {status}{hint}: {redact(exc.message, key)}",
                        status=status,
                        attempts=attempt + 1,
                    ) from exc
            else:
                return self._completion(call, raw, time.monotonic() - started, attempt + 1)
            if attempt < call.retries:
                self._sleep(self._delay(attempt, retry_after))
        assert last is not None
        raise last

    @staticmethod
    def _completion(call: StepCall, raw: Any, latency_s: float, attempts: int) -> Completion:
        parsed = raw.parse()
        message = parsed.choices[0].message if parsed.choices else None
        content = (message.content or "") if message else ""
        reasoning = getattr(message, "reasoning_content", None) if message else None
        usage = parsed.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        sim_ms = raw.headers.get(SIM_LATENCY_HEADER)
        return Completion(
            content=content,
            reasoning_content=reasoning,
            usage=call.cost(prompt_tokens, completion_tokens),
            latency_s=latency_s,
            attempts=attempts,
            sim_latency_ms=float(sim_ms) if sim_ms else None,
        )
