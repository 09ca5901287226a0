"""What a provider's error says, made fit for a job's cause: one line, said once,
without the key.

Causes travel into one-line progress output, CLI errors, the job's record, Celery
results and Flower. Providers and proxies write their errors for other readers:
LiteLLM's messages carry blank lines and tracebacks, some echo the API key, and
the SDK's own text repeats the status ("Error code: 429 - ...") that the cause
already names.
"""

from __future__ import annotations

import re

import openai

from vpsweb.errors import one_line

SAID_CHARS = 300  # of a provider's error text: the cause must stay one readable line

_KEYLIKE = re.compile(r"\b(sk|ak|key)[-_][A-Za-z0-9*_\-.]{4,}", re.IGNORECASE)


def redact(text: str, key: str) -> str:
    """Provider error texts may echo (part of) the API key; such text ends up in job
    errors, Celery results and Flower, so the key and key-like tokens are masked."""
    if key and len(key) >= 6:
        text = text.replace(key, "[redacted]")
    return _KEYLIKE.sub("[redacted key]", text)


def provider_said(exc: openai.APIStatusError, key: str) -> str:
    """The body's error message (OpenAI's ``error.message``, a proxy's ``detail``, or
    plain text), else what the SDK kept of it without its "Error code: NNN" prefix,
    else the reason phrase."""
    body = exc.body
    said = body.get("message") or body.get("detail") if isinstance(body, dict) else body
    if not isinstance(said, str) or not said.strip():
        said = exc.message.removeprefix(f"Error code: {exc.status_code}").lstrip(" -")
    said = said or exc.response.reason_phrase or "no message"
    return flat(said, key)


def flat(text: str, key: str) -> str:
    """Any provider or transport text as part of a cause: redacted, one bounded line."""
    return one_line(redact(text, key), SAID_CHARS)
