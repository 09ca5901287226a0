"""The one path to LLMs: an OpenAI-compatible client on the ``openai`` SDK.

Exactly one retry layer lives here (the SDK's own retries are switched off; the
original application nested two and could make ~16 calls per step). Only what
is transient is retried: connection errors, timeouts, 429 (honouring
Retry-After), 5xx and 200 answers that are not JSON. 4xx answers are final.

Each attempt runs on a private event loop (see ``loop``), so ``timeout_s`` bounds
the whole attempt and a cancelled job abandons its call at once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx2
import openai

from vpsweb import settings
from vpsweb.config.schema import ModelsConfig
from vpsweb.errors import LLMTimeout, MissingAPIKey, TransientLLMError
from vpsweb.llm.backoff import MAX_RETRY_AFTER_S, backoff_s
from vpsweb.llm.completion import Completion, LLMClient
from vpsweb.llm.endpoints import Endpoint, resolve
from vpsweb.llm.loop import POLL_S, DeadlinePassed, LoopThread
from vpsweb.llm.provider_text import flat, redact
from vpsweb.llm.quota_gate import Caller, QuotaGate, check_still_time, permit_for
from vpsweb.llm.responses import Retry, completion_of, status_error

if TYPE_CHECKING:  # pragma: no cover - the plan module imports the stages, which import this
    from vpsweb.domain.permits import Settlement
    from vpsweb.domain.plan import StepCall
    from vpsweb.storage.quotas import Quotas

__all__ = ["MAX_RETRY_AFTER_S", "Completion", "LLMClient", "OpenAICompatibleClient", "redact"]

_SDKs = dict[tuple[str, str], openai.AsyncOpenAI]


async def _close_all(sdks: _SDKs) -> None:
    for sdk in list(sdks.values()):
        await sdk.close()
    sdks.clear()


class OpenAICompatibleClient:
    """Thread-safe: many worker threads call ``complete`` at once and their attempts
    overlap on one event loop, with one SDK client per (base_url, key).

    Options (keyword-only):
      models: this worker's models.yaml (default: the loaded config's), from which
        every call's URL, key variable and price are resolved; a job names models only.
      env: where API keys and URL overrides are read (default os.environ). Keys are
        read here, in the worker, and never travel with the job.
      sleep: the back-off sleep (tests pass a recorder). With a ``check`` it is
        called in slices of at most POLL_S, so that cancellation is not delayed.
      backoff_base_s / backoff_max_s: exponential back-off when no Retry-After.
      transport: an httpx2 transport for the SDK (tests pass an in-memory one).
      quotas: the cluster's shared allowances; a call made for a ``Caller``
        (``for_caller``) waits for a permit, and a 429 is then no attempt.

    The loop thread starts on the first call; ``close()`` stops it (a later call
    starts a new one), and so does garbage collection of the client.
    """

    def __init__(
        self,
        *,
        models: ModelsConfig | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self._models = models
        self._quotas, self._threads = quotas, 32
        self._gate: QuotaGate | None = None
        self._env = env if env is not None else os.environ
        self._sleep = sleep
        self._base = backoff_base_s
        self._max = backoff_max_s
        self._transport = transport
        self._lock = threading.Lock()
        self._runner: LoopThread | None = None
        self._sdks: _SDKs = {}  # filled and used on the loop thread only
        self._stopper: weakref.finalize[Any, Any] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def _started(self) -> tuple[LoopThread, _SDKs]:
        with self._lock:
            if self._runner is None or not self._runner.usable:
                if self._stopper is not None:
                    self._stopper.detach()  # its loop is gone (forked child) or dead
                self._runner = LoopThread(f"vpsweb-llm-{id(self):x}")
                self._sdks = {}  # clients of another loop (or a parent process) are unusable
                self._stopper = weakref.finalize(self, _stop, self._runner, self._sdks)
                # Not at exit: a daemon loop must never hold up the end of a process.
                self._stopper.atexit = False
            return self._runner, self._sdks

    def close(self) -> None:
        """Cancel calls in flight, close the SDK clients and stop the loop thread."""
        with self._lock:
            stopper, self._stopper, self._runner = self._stopper, None, None
        if stopper is not None:
            stopper()  # runs _stop once; a finalizer is dead after its first call

    def __enter__(self) -> OpenAICompatibleClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- configuration -----------------------------------------------------------------

    def endpoint(self, call: StepCall) -> Endpoint:
        """Where this worker sends the call: its own config decides, never the job."""
        if self._models is None:
            from vpsweb.config import load_config

            self._models = load_config().models
        return resolve(self._models, call, self._env)

    def api_key(self, endpoint: Endpoint) -> str:
        """The key this worker sends to the endpoint ("offline"/"none" where none is needed)."""
        if endpoint.offline:
            return "offline"
        if endpoint.api_key_env is None:
            return "none"
        key = self._env.get(endpoint.api_key_env, "").strip()
        if not key:
            info = endpoint.info
            raise MissingAPIKey(
                f"no API key for model {info.model!r} (provider {info.provider!r}): "
                f"set {endpoint.api_key_env} in the worker's environment, or run offline "
                f"with {settings.OFFLINE_ENV}=1 / --offline"
            )
        return key

    def _sdk(self, sdks: _SDKs, base_url: str, key: str) -> openai.AsyncOpenAI:
        """Called on the loop thread only, so the cache needs no lock."""
        client = sdks.get((base_url, key))
        if client is None:
            http = None
            if self._transport is not None:
                http = openai.DefaultAsyncHttpxClient(transport=self._transport)
            client = openai.AsyncOpenAI(
                base_url=base_url, api_key=key, max_retries=0, http_client=http
            )
            sdks[(base_url, key)] = client
        return client

    # --- calls -------------------------------------------------------------------------

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion:
        return self.complete_for(None, call, messages, check=check)

    def for_caller(self, caller: Caller) -> LLMClient:
        """This client, for one step of one job: its calls wait for quota permits."""
        return _CallerClient(self, caller)

    def sized_for(self, threads: int) -> None:
        """The worker's thread count (before its first call): parkable quota waits
        take at most half of them."""
        self._threads = threads

    def settlements_due(self) -> list[Settlement]:
        """Quota settlements this process owes: a step's end sends them with its own
        round trip (``StepLog.finish``), so that returning a permit costs none."""
        gate = self._gate
        return gate.take_due() if gate is not None else []

    def gate(self) -> QuotaGate | None:
        if self._quotas is None:
            return None
        with self._lock:
            if self._gate is None:
                if self._models is None:
                    from vpsweb.config import load_config

                    self._models = load_config().models
                self._gate = QuotaGate(self._quotas, self._models, threads=self._threads)
            return self._gate

    def complete_for(
        self,
        caller: Caller | None,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion:
        """``complete``; with a caller and the cluster's quotas, each attempt waits for
        a permit, and a 429 (which shrinks every worker's allowance) is not an attempt:
        the call waits for quota again until the job's deadline."""
        endpoint = self.endpoint(call)
        key = self.api_key(endpoint)
        body = _body(endpoint, call, messages)
        gate = self.gate() if caller is not None else None
        attempt, throttled = 1, None
        while True:
            if check is not None:
                check()
            permit = None
            if gate is not None and caller is not None:
                permit = permit_for(gate, endpoint, body, caller, call, check, throttled)
            try:
                completion = self._attempt(call, endpoint, key, body, attempt, check)
            except Retry as retry:
                if gate is not None and permit is not None:
                    gate.settle(
                        permit, used_tokens=None, throttled=retry.throttled, pause_s=retry.window_s
                    )
                    if retry.throttled:
                        throttled = retry.error
                        check_still_time(caller, throttled)
                        if retry.window_s is None and retry.retry_after:
                            self._pause(retry.retry_after, check)  # this call only
                        continue
                if attempt > call.retries:
                    raise retry.error from retry.__cause__
                wait = backoff_s(attempt - 1, retry.retry_after, base_s=self._base, max_s=self._max)
                self._pause(wait, check)
                attempt += 1
                continue
            except BaseException:
                if gate is not None and permit is not None:
                    gate.settle(permit, used_tokens=None)
                raise
            if gate is not None and permit is not None:
                used = completion.usage.prompt_tokens + completion.usage.completion_tokens
                gate.settle(permit, used_tokens=used, pause_s=completion.pause_s)
            return completion

    def _pause(self, seconds: float, check: Callable[[], float | None] | None) -> None:
        """Back off; with a ``check``, in slices, so a job cancelled during a long
        Retry-After stops within POLL_S instead of at the end of the wait."""
        if check is None:
            self._sleep(seconds)
            return
        left = seconds
        while left > 0:
            step = min(POLL_S, left)
            self._sleep(step)
            left -= step
            if left > 0:
                check()  # the last slice is followed by complete()'s own check

    async def _send(
        self, sdks: _SDKs, base_url: str, key: str, body: dict[str, Any], timeout_s: float
    ) -> tuple[httpx2.Response, float]:
        """The SDK's own ``post`` to /chat/completions: its auth, headers, connection
        pool and status errors, without ``create``'s transform of the params and its
        model of the answer, which cost half the CPU of a call (measured: 4.7 ms
        against 2.4 ms per call, docs/performance-baseline.md, section 7)."""
        started = time.monotonic()
        response = await self._sdk(sdks, base_url, key).post(
            "/chat/completions",
            body=body,
            cast_to=httpx2.Response,
            # Per read only; the wall-clock bound is the runner's deadline.
            options={"timeout": timeout_s},
        )
        return response, time.monotonic() - started

    def _attempt(
        self,
        call: StepCall,
        endpoint: Endpoint,
        key: str,
        body: dict[str, Any],
        attempt: int,
        check: Callable[[], float | None] | None,
    ) -> Completion:
        where = f"{call.step} via {endpoint.info.provider}/{endpoint.info.api_model}"
        base_url = endpoint.base_url
        runner, sdks = self._started()
        try:
            response, latency_s = runner.run(
                self._send(sdks, base_url, key, body, call.timeout_s),
                timeout_s=call.timeout_s,
                check=check,
            )
        except (DeadlinePassed, openai.APITimeoutError) as exc:
            raise Retry(
                LLMTimeout(
                    f"{where}: no answer within {call.timeout_s:g}s "
                    f"(attempt {attempt} of {call.retries + 1})",
                    attempts=attempt,
                )
            ) from exc
        except openai.APIConnectionError as exc:
            text = flat(f"{exc}: {exc.__cause__ or ''}".rstrip(": "), key)
            raise Retry(
                TransientLLMError(
                    f"{where}: cannot connect to {base_url}: {text}", attempts=attempt
                )
            ) from exc
        except openai.APIStatusError as exc:
            raise status_error(exc, where, key, attempt) from exc
        except concurrent.futures.CancelledError as exc:  # a concurrent close()
            raise Retry(
                TransientLLMError(f"{where}: the LLM client was closed", attempts=attempt)
            ) from exc
        return completion_of(endpoint, response, latency_s, attempt, where, key)


class _CallerClient:
    """An OpenAICompatibleClient bound to one step's caller (see ``for_caller``)."""

    def __init__(self, client: OpenAICompatibleClient, caller: Caller) -> None:
        self.client, self.caller = client, caller

    def complete(
        self,
        call: StepCall,
        messages: list[dict[str, str]],
        *,
        check: Callable[[], float | None] | None = None,
    ) -> Completion:
        completion = self.client.complete_for(self.caller, call, messages, check=check)
        if self.caller.parkable:  # a paid answer in hand: the step no longer parks
            self.caller = dataclasses.replace(self.caller, parkable=False)
        return completion


def _body(endpoint: Endpoint, call: StepCall, messages: list[dict[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": endpoint.info.api_model,
        "messages": messages,
        "max_tokens": call.max_tokens,
    }
    if endpoint.sampling:
        body["temperature"] = call.temperature
    if call.stop:
        body["stop"] = call.stop
    return body


def _stop(runner: LoopThread, sdks: _SDKs) -> None:
    runner.stop(lambda: _close_all(sdks))
