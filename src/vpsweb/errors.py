"""Every exception vpsweb raises on purpose, under one root (as httpx does).

Messages say what went wrong and what to do next, so a CLI can print them as
they are. Catch ``VpswebError`` for all of them, or a subclass for one kind.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

ONE_LINE_CHARS = 500
_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = ONE_LINE_CHARS) -> str:
    """An error text as one bounded line. Causes are printed in one-line progress
    output and CLI errors, and stored with the job; a provider's body (LiteLLM puts
    ``\\n\\n`` and tracebacks in it) must not break the line or flood the screen."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class VpswebError(Exception):
    """Root of every vpsweb error."""


# --- configuration and input -------------------------------------------------------


class SettingsError(VpswebError):
    """A required setting (environment variable or flag) is missing or unusable."""


class ConfigError(VpswebError):
    """The YAML config is unusable; ``problems`` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class RequestInvalid(VpswebError):
    """The submission is invalid; nothing was enqueued. ``errors`` has one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid translation request: " + "; ".join(errors))


class InputFileError(VpswebError):
    """A file the user named cannot be read as text (missing, unreadable, unknown
    encoding); the message says what to do."""


class PromptRenderError(VpswebError):
    """A template referenced a variable the step does not provide, or failed to render."""


# --- jobs --------------------------------------------------------------------------


class StoreUnavailable(VpswebError):
    """The state store (Redis) cannot be reached or refused us."""


class JobNotFound(VpswebError):
    """No job with this id: a typo, another Redis, or the job expired."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id!r} not found: check the id (`vpsweb jobs` lists recent ones), "
            "the Redis URL, and that the job has not expired"
        )


class BatchNotFound(VpswebError):
    """No batch with this id: a typo, another Redis, or the batch expired."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(
            f"batch {batch_id!r} not found: check the id (``Client.batches()`` lists recent "
            "ones), the Redis URL, and that the batch has not expired"
        )


class EndedJob(Protocol):
    """What a job error says of its job: ``vpsweb.storage.JobRecord`` is one. A
    protocol, so that this module imports nothing of vpsweb (everything imports it)."""

    @property
    def job_id(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_stage(self) -> str | None: ...


class JobError(VpswebError):
    """A job ended without a translation."""

    def __init__(self, record: EndedJob, message: str) -> None:
        self.record = record
        super().__init__(message)


class JobFailed(JobError):
    """The job failed; ``stage`` and ``cause`` say where and why, ``spent`` (Totals, when
    known) what it cost up to then."""

    def __init__(self, record: EndedJob, *, spent: Any = None) -> None:
        self.stage = record.error_stage or "unknown stage"
        self.cause = one_line(record.error or "no cause recorded")
        self.spent = spent
        super().__init__(record, f"job {record.job_id} failed in {self.stage}: {self.cause}")


class JobCancelled(JobError):
    def __init__(self, record: EndedJob) -> None:
        super().__init__(record, f"job {record.job_id} was cancelled; it has no result")


class ResultExpired(JobError):
    """The job succeeded, but its result is no longer stored."""


# --- stages and LLM calls ------------------------------------------------------------


class ParseError(VpswebError):
    """An answer lacks required tags; callers may re-ask a bounded number of times.

    The message names what is missing, never the model's text: messages reach Celery
    results and Flower. ``excerpt`` (the answer's first characters) is for the job's
    own record only.
    """

    def __init__(self, message: str, *, missing: Any = (), excerpt: str = "") -> None:
        self.missing = list(missing)
        self.excerpt = excerpt
        super().__init__(message)


class TruncatedAnswer(ParseError):
    """The answer was cut off (finish_reason "length", or it ends inside a required
    field): re-asked once with a note, then a failure naming the limit."""


class EmptyAnswer(ParseError):
    """The answer has no text at all (or only reasoning and code fences): said as such,
    since "missing required tags" would send the user looking for a format problem
    when the model (or the person) returned nothing."""


class StageFailed(VpswebError):
    """A stage could not produce its output; names the stage and the cause (and, for
    the job's own record only, an excerpt of the answer it could not use)."""

    def __init__(
        self,
        step: str,
        display_name: str,
        cause: str,
        *,
        metrics: Any = None,
        excerpt: str = "",
    ) -> None:
        self.step = step
        self.display_name = display_name
        self.cause = cause
        self.metrics = metrics
        self.excerpt = excerpt
        super().__init__(f"{display_name} failed: {cause}")


class LLMError(VpswebError):
    """Base of every LLM failure. ``attempts`` counts the HTTP calls made."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        self.attempts = attempts
        super().__init__(message)


class ModelNotConfigured(LLMError):
    """The job names a model this worker's models.yaml does not know: workers call only
    the providers their own config names."""


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


class QuotaParked(VpswebError):
    """A batch step gives its worker thread back instead of waiting for quota in it:
    its task runs again in ``after_s`` seconds (nothing was paid; the step is as if it
    had not started). Not an LLM error: it neither fails nor falls back."""

    def __init__(self, message: str, *, after_s: float) -> None:
        super().__init__(message)
        self.after_s = after_s


class QuotaWaitTooLong(TransientLLMError):
    """The provider's quota would keep the call waiting past the step's worst case."""


# --- control flow inside workers -----------------------------------------------------


class Cancelled(VpswebError):
    """The job ended (cancelled or failed elsewhere); raised before an LLM call so that
    no more money is spent."""


class Late(Cancelled):
    """A candidate still running when the job's straggler policy stopped waiting for it:
    the candidate stage records it as ``late`` (not failed) with what it had cost."""


class BudgetReached(Cancelled):
    """The job's spend reached its ``max_cost``: no new LLM call is made, and the job
    fails with this as its cause, keeping what it stored and what it paid. A Cancelled,
    so that a fan-out item stops as the others do, rather than being recorded lost."""

    def __init__(self, spent: float, max_cost: float, currency: str) -> None:
        self.spent, self.max_cost, self.currency = spent, max_cost, currency
        unit = f" {currency}" if currency else ""
        super().__init__(f"budget reached: spent {spent:.4g} of max_cost {max_cost:g}{unit}")


class BatchBudgetReached(BudgetReached):
    """The spend of the job's batch reached the batch's budget: as BudgetReached, the
    job makes no new LLM call and fails with this as its cause, keeping what it stored
    (the batch's finished poems are kept)."""

    def __init__(self, batch_id: str, spent: float, budget: float, currency: str) -> None:
        super().__init__(spent, budget, currency)
        self.batch_id = batch_id
        unit = f" {currency}" if currency else ""
        self.args = (
            f"batch budget reached: batch {batch_id} spent {spent:.4g} of its budget "
            f"{budget:g}{unit}; `resume` it with a higher budget to finish it",
        )


class JobGone(VpswebError):
    """The job is unknown or expired; its tasks have nothing to do."""


class AwaitingAnswer(Cancelled):
    """A manual step has no answer yet: the prompt it would have sent is parked in the
    store for a person, and the task ends (no worker thread waits for a person)."""

    def __init__(self, messages: list[dict[str, str]]) -> None:
        self.messages = messages
        super().__init__("waiting for a manual answer")


# --- manual answers ------------------------------------------------------------------


class AnswerRefused(VpswebError):
    """The key is not waiting for an answer (unknown, already answered, or the job
    ended): nothing was stored."""


class AnswerRejected(VpswebError):
    """The stage cannot use this answer (``missing`` names the tags it lacks); nothing
    changed and the prompt is still pending."""

    def __init__(self, message: str, *, missing: Any = ()) -> None:
        self.missing = list(missing)
        super().__init__(message)
