"""LLM errors. Messages say what went wrong and what to do about it."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every LLM failure. ``attempts`` counts the HTTP calls made."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        self.attempts = attempts
        super().__init__(message)


class MissingAPIKey(LLMError):
    """The worker's environment lacks the provider's key; no call was made."""


class PermanentLLMError(LLMError):
    """400/401/403/404/422: retrying cannot help (bad request, bad key, unknown model)."""

    def __init__(self, message: str, *, status: int, attempts: int = 0) -> None:
        self.status = status
        super().__init__(message, attempts=attempts)


class TransientLLMError(LLMError):
    """Connection errors, timeouts, 429 and 5xx that outlasted the retry budget."""


class LLMTimeout(TransientLLMError):
    """The call exceeded the step's timeout on its last attempt."""


class Cancelled(Exception):
    """The job was cancelled; raised before an LLM call so no more money is spent."""
