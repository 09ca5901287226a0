"""The client core: what ``Client`` and ``AsyncClient`` both do, with no I/O.

Both clients are thin drivers around this module: they read from the store (sync
or asyncio), feed what they read here, and do what it says. Here are

* the request, declared once: a submit call's arguments become a request by the
  field names of ``TranslationRequest`` (a test checks every entry point against it);
* result decoding: a record and a stored result become the output or the error;
* manual answers: which prompts wait, whether an answer is usable, what to record;
* the follower (``Follower``): a state machine fed the events read, the job's
  status and deadline, the live workers and the time, that says when to look at
  the cluster, when to fail a stalled job, and which warnings to emit or withdraw.

Reconnecting is the stores' part: their event readers read an unreachable store
as "nothing new" after a pause, so a follower keeps following.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from vpsweb import settings
from vpsweb.config import AppConfig, load_config
from vpsweb.domain import sizing
from vpsweb.domain.admission import require_fits
from vpsweb.domain.estimate import JobEstimate, estimate_job
from vpsweb.domain.manual_answers import PendingPrompt, manual_keys
from vpsweb.domain.manual_answers import check_answer as check_stage_answer
from vpsweb.domain.models import Totals, TranslationRequest
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.progress import EventKind, ProgressEvent, ProgressSnapshot
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import (
    AnswerRefused,
    AnswerRejected,
    JobCancelled,
    JobFailed,
    ParseError,
    RequestInvalid,
    ResultExpired,
)
from vpsweb.orchestrator.lifecycle import overdue
from vpsweb.stages.table import Stage, stage_bounds
from vpsweb.stages.table import stage as stage_named
from vpsweb.storage.base import Event, JobRecord, JobStatus

_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
CHECK_EVERY_S = 3.0  # how often a quiet follower checks for workers and its deadline
REQUEST_FIELDS = tuple(TranslationRequest.model_fields)


def valid_job_id(job_id: str) -> bool:
    """Ids are 12 hex digits: anything else never reaches Redis."""
    return bool(_JOB_ID.match(job_id))


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def plan_job(
    request: TranslationRequest | Mapping[str, Any],
    config: AppConfig,
    *,
    offline: bool | None = None,
    manual: bool | list[str] = False,
) -> JobPlan:
    """Validate and plan a request with a fresh job id, touching no store (RequestInvalid
    if bad or too large for a step's model); ``submit_plan`` submits it, restarting
    its clock."""
    if isinstance(request, Mapping):
        request = dict(request)
    plan = build_plan(request, config, job_id=new_job_id(), offline=offline, manual=manual)
    return require_fits(plan, config)


def estimate_request(
    request: TranslationRequest | Mapping[str, Any],
    config: AppConfig,
    *,
    offline: bool | None = None,
    manual: bool | list[str] = False,
) -> JobEstimate:
    """What the request would cost (``vpsweb.domain.estimate``), touching no store:
    validated and planned as ``plan_job`` does (RequestInvalid if bad or too large for
    a step's model), but not refused for its max_cost, so that the estimate is there to
    compare with it (``budget_problems`` says whether a submission would be refused)."""
    if isinstance(request, Mapping):
        request = dict(request)
    plan = build_plan(request, config, job_id=new_job_id(), offline=offline, manual=manual)
    if found := sizing.problems(plan, config):
        raise RequestInvalid(found)
    return estimate_job(plan, config)


class Planner:
    """What both clients plan with: their config (loaded on first use, so that
    constructing a client reads nothing) and ``plan``, which touches no store."""

    _config: AppConfig | None

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config()
        return self._config

    def plan(
        self,
        request: TranslationRequest | Mapping[str, Any],
        *,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> JobPlan:
        """Validate and plan a request without submitting it (RequestInvalid if bad)."""
        return plan_job(request, self.config, offline=offline, manual=manual)


def request_of(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The request in a submit call's arguments (``locals()``): every field of
    ``TranslationRequest`` found there, models as plain data; None for optional
    models (strategy, straggler) means the configured default."""
    request: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        if name not in arguments:
            continue
        value = arguments[name]
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if value is None and name in ("strategy", "straggler"):
            continue
        request[name] = value
    return request


def straggler_of(text: str, *, name: str = "straggler") -> dict[str, Any] | None:
    """``wait_all`` or ``quorum[:FRACTION[:GRACE]]`` (the CLI's and the web form's
    spelling) as the request's policy; "" is None (the mode's). The values are
    checked with the rest of the request."""
    text = text.strip()
    if not text:
        return None
    policy, *values = text.split(":")
    if policy == "wait_all" and not values:
        return {"policy": policy}
    if policy != "quorum" or len(values) > 2:
        expected = "expected wait_all or quorum[:FRACTION[:GRACE]], e.g. quorum:0.75:0.1"
        raise RequestInvalid([f"{name} {text!r}: {expected}"])
    return {"policy": policy} | dict(zip(("quorum", "grace"), values, strict=False))


# --- results --------------------------------------------------------------------------


def needs_spent(record: JobRecord) -> bool:
    """A failed job's error says what it spent: read it before ``result_of``."""
    return record.status is JobStatus.FAILED


def result_of(record: JobRecord, raw: str | None, spent: Totals | None = None) -> TranslationOutput:
    """The output of an ended job, or why there is none (JobFailed, JobCancelled,
    ResultExpired)."""
    if record.status is JobStatus.FAILED:
        raise JobFailed(record, spent=spent)
    if record.status is JobStatus.CANCELLED:
        raise JobCancelled(record)
    if raw is None:
        raise ResultExpired(record, f"job {record.job_id} succeeded but its result has expired")
    return TranslationOutput.model_validate_json(raw)


# --- manual answers ---------------------------------------------------------------------


def pending_prompts(record: JobRecord, raw: Mapping[str, str]) -> list[PendingPrompt]:
    """The stored prompts of a job, in workflow order (none once it ended)."""
    if record.status.terminal:
        return []
    plan = record.plan
    order = {k: i for i, k in enumerate(manual_keys(plan.manual_steps, lambda s: s.keys(plan)))}
    prompts = [PendingPrompt.model_validate_json(v) for v in raw.values()]
    return sorted(prompts, key=lambda p: order.get(p.key, len(order)))


@dataclass(frozen=True)
class Answer:
    """An answer that passed its checks: what to store, and the event to record."""

    stage: Stage
    stage_keys: list[str]
    deadline: float
    ttl: int
    event: Event


def check_answer(
    record: JobRecord, key: str, text: str, raw_prompt: str | None, waiting: list[str], now: float
) -> Answer:
    """AnswerRefused if ``key`` is not waiting (``waiting``: the keys that are);
    AnswerRejected if its stage cannot use ``text``; else what to store."""
    job_id = record.job_id
    if record.status.terminal:
        raise AnswerRefused(f"job {job_id} has {record.status.value}: it takes no answers")
    if raw_prompt is None:
        listed = ", ".join(waiting) or "none"
        raise AnswerRefused(
            f"{key!r} is not waiting for an answer in job {job_id} (waiting: {listed})"
        )
    prompt = PendingPrompt.model_validate_json(raw_prompt)
    s = stage_named(prompt.stage)
    try:
        check_stage_answer(s, text, prompt.text())
    except ParseError as exc:
        raise AnswerRejected(
            f"the answer to {key} cannot be used: {exc}", missing=exc.missing
        ) from None
    plan = record.plan
    start, _ = stage_bounds(plan.progress_weights, s.name)
    fields = {
        "stage": s.display_name,
        "status": "answered",
        "key": key,
        "message": f"answer to {key} received",
    }
    event = Event(EventKind.ANSWER_RECEIVED, start, fields)
    return Answer(s, s.keys(plan), plan.deadline_after(s.name, now), plan.retention_s, event)


def answer_accepted(job_id: str, key: str, outcome: str) -> bool:
    """The store's outcome of an answer: True when the job moves on; AnswerRefused if
    nothing was stored."""
    if outcome not in ("stored", "resumed"):
        raise AnswerRefused(f"{key!r} in job {job_id}: {outcome.replace('_', ' ')}")
    return outcome == "resumed"


# --- workers and the follower -----------------------------------------------------------


def missing_workers(live: Mapping[str, list[str]], routing: Mapping[str, str]) -> list[str]:
    """What no live worker would do for a job now, each with how to fix it."""
    if not live:
        needs = ", ".join(sorted(set(routing.values())))
        return [
            f"no worker is running against this Redis: the job waits in its queue "
            f"(it needs {needs}). Start one with `vpsweb worker` ({settings.REDIS_URL_ENV} set)"
        ]
    consumed = {q for queues in live.values() for q in queues}
    stages: dict[str, list[str]] = {}
    for stage, queue in routing.items():
        stages.setdefault(queue, []).append(stage)
    return [
        f"no live worker consumes queue {queue} ({', '.join(names)}): start one with "
        f"`vpsweb worker --queues {queue}` (or `vpsweb worker` for every queue)"
        for queue, names in sorted(stages.items())
        if queue not in consumed
    ]


@dataclass
class Follower:
    """The follower's state: sans-I/O, one per job followed.

    The driver reads the job's events. After each quiet read it asks
    ``begin_check(now)``, and before yielding each event ``begin_check(now, event)``.
    When that says yes it reads the job's status and deadline, fails the job as
    stalled if ``stalled`` says so, reads the live workers, and feeds them to
    ``checked``, which returns the warnings to emit: one when a queue the job needs
    has no live worker, the same with status ``resolved`` when one comes. Warnings
    are the follower's own events (not stored). ``routing`` (stage -> queue) is
    asked for only when there are workers to compare.
    """

    job_id: str
    routing: Callable[[], Mapping[str, str]]
    every_s: float = CHECK_EVERY_S
    last: float | None = None
    said: set[str] = field(default_factory=set)

    def begin_check(self, now: float, event: ProgressEvent | None = None) -> bool:
        """Whether to look now (and if so, the look starts now). After a quiet read
        (``event`` None): every ``every_s``. Before an event: only while warnings are
        out (work goes on: are they still true?), and at once before the terminal
        event, so that nothing is left unsaid at the end."""
        due = self.last is None or now - self.last >= self.every_s
        if event is not None:
            due = bool(self.said) and (event.terminal or due)
        if due:
            self.last = now
        return due

    def stalled(self, status: JobStatus | None, deadline: float | None, epoch: float) -> bool:
        """Whether the job is past its deadline with nobody left to end it."""
        return overdue(status, deadline, epoch)

    def wants_workers(self, status: JobStatus | None) -> bool:
        """A job waiting for a person needs no queue now: no need to read the workers."""
        return status is not JobStatus.WAITING

    def checked(
        self, status: JobStatus | None, live: Mapping[str, list[str]] | None
    ) -> list[ProgressEvent]:
        """The warnings to emit after a look (``live`` None: the workers were not read;
        nothing changes)."""
        if status is JobStatus.WAITING or live is None:
            return []
        problems = set(missing_workers(live, self.routing()))
        new, gone, self.said = problems - self.said, self.said - problems, problems
        return [
            *(ProgressEvent(event=EventKind.WARNING, message=m) for m in sorted(new)),
            *(
                ProgressEvent(event=EventKind.WARNING, message=m, status="resolved")
                for m in sorted(gone)
            ),
        ]


def log_warning(job_id: str, event: ProgressEvent, log: Callable[..., None]) -> None:
    """How ``wait`` reports a follower's warning: ``log(level, msg, *args)``."""
    if event.event is not EventKind.WARNING:
        return
    if event.status != "resolved":
        log(30, "job %s: %s", job_id, event.message)
    else:
        log(20, "job %s: resolved: %s", job_id, event.message)


def not_lower(snap: ProgressSnapshot, highest: float) -> tuple[ProgressSnapshot, float]:
    """``snap`` with its percentage raised to ``highest`` if it fell below, and the new
    highest: what one handle shows never goes back, even when a read reached a stale
    server."""
    if snap.progress_percent < highest:
        return snap.model_copy(update={"progress_percent": highest}), highest
    return snap, snap.progress_percent
