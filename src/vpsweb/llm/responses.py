"""A provider's answer, read: the completion, or the error the next attempt may not
have (``Retry``), or the final one. Kept apart from the client's call path, which
decides what to do with them."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from vpsweb.errors import PermanentLLMError, TransientLLMError, VpswebError
from vpsweb.llm.backoff import exhausted_for_s, retry_after_s
from vpsweb.llm.completion import Completion
from vpsweb.llm.endpoints import Endpoint
from vpsweb.llm.provider_text import provider_said, redact

SIM_LATENCY_HEADER = "x-vpsweb-latency-ms"


class Retry(VpswebError):
    """An attempt failed in a way the next one may not: the error to raise when no
    attempt is left, and the wait the server asked for, if any."""

    def __init__(
        self,
        error: TransientLLMError,
        retry_after: float | None = None,
        *,
        throttled: bool = False,
        window_s: float | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.throttled = throttled  # a 429: under a quota gate, not an attempt
        # The 429 said a window is spent (x-ratelimit-remaining-*: 0): every worker
        # waits this long. Without it (a concurrency limit, say) only this call waits.
        self.window_s = window_s


def status_error(
    exc: openai.APIStatusError, where: str, key: str, attempt: int
) -> Retry | PermanentLLMError:
    status = exc.status_code
    message = provider_said(exc, key)
    # OpenAI's 429 for an account out of credit: no wait brings it back.
    out_of_credit = status == 429 and getattr(exc, "code", None) == "insufficient_quota"
    if (status == 429 and not out_of_credit) or status >= 500:
        error = TransientLLMError(
            f"{where}: HTTP {status} after {attempt} attempt(s): {message}", attempts=attempt
        )
        headers = exc.response.headers
        retry_after = retry_after_s(headers)
        spent = exhausted_for_s(headers) if status == 429 else None
        if spent is not None:
            spent = max(spent, retry_after or 0.0)
        return Retry(error, retry_after, throttled=status == 429, window_s=spent)
    hint = " (check the API key)" if status in (401, 403) else ""
    if out_of_credit:
        hint = " (the account is out of credit: top it up)"
    return PermanentLLMError(
        f"{where}: HTTP {status}{hint}: {message}", status=status, attempts=attempt
    )


def completion_of(
    endpoint: Endpoint,
    response: httpx2.Response,
    latency_s: float,
    attempts: int,
    where: str,
    key: str,
) -> Completion:
    kind = response.headers.get("content-type", "no content type")
    parsed: object = None
    if "json" in kind:  # as the SDK decides: other bodies are text, a proxy's page say
        try:
            parsed = json.loads(response.content)
        except ValueError:  # declared JSON, but is not
            parsed = None
    if not isinstance(parsed, dict):
        excerpt = redact(response.text, key)[:120]  # redact first: no key halves
        error = TransientLLMError(
            f"{where}: HTTP {response.status_code} but the answer was not JSON ({kind}): "
            f"{excerpt!r}",
            attempts=attempts,
        )
        raise Retry(error)
    choices = parsed.get("choices")
    choice = _mapping(choices[0] if isinstance(choices, list) and choices else None)
    message = _mapping(choice.get("message"))
    usage = _mapping(parsed.get("usage"))
    sim_ms = response.headers.get(SIM_LATENCY_HEADER)
    return Completion(
        content=str(message.get("content") or ""),
        reasoning_content=_reasoning(message),
        usage=endpoint.cost(
            int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        ),
        latency_s=latency_s,
        attempts=attempts,
        sim_latency_ms=float(sim_ms) if sim_ms else None,
        finish_reason=choice.get("finish_reason"),
        model=endpoint.info,
        pause_s=exhausted_for_s(response.headers),
    )


def _reasoning(message: dict[str, Any]) -> str | None:
    """The model's reasoning beside its answer: DeepSeek's ``reasoning_content``, or
    ``reasoning`` as some OpenAI-compatible servers name it; None for anything else."""
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) and value.strip() else None


def _mapping(value: object) -> dict[str, Any]:
    """A JSON object of the answer, or an empty one where a provider left it out."""
    return value if isinstance(value, dict) else {}
