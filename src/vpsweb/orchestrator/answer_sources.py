"""Where a step's answers come from: an LLM API, or a person (manual mode).

Both feed the same step path (``orchestrator.step``): the stage runs with the
source's client. The API source is the worker's LLM client. A person's source is
the stored answer, if one was given, as a free completion by the model "manual";
without one the stage raises AwaitingAnswer with the prompt it would have sent,
and the source parks that prompt for the person: the task ends, and no worker
thread waits for a person (an answer queues the job again).
"""

from __future__ import annotations

import abc
import contextlib
import time

from vpsweb.domain.manual_answers import ManualLLM, PendingPrompt
from vpsweb.domain.models import Priority, utcnow
from vpsweb.domain.plan import JUDGED_STEPS
from vpsweb.domain.progress import EventKind
from vpsweb.errors import StoreUnavailable
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.llm.quota_gate import Caller
from vpsweb.orchestrator.job import JobRun
from vpsweb.stages.table import Stage, stage_bounds
from vpsweb.storage import Event


class AnswerSource(abc.ABC):
    """What a step's stage calls for its completions."""

    @abc.abstractmethod
    def client(self) -> LLMClient:
        """The client the stage calls (read when the step runs, under its lease)."""

    @abc.abstractmethod
    def awaiting(self, messages: list[dict[str, str]]) -> None:
        """The stage asked, and the source has no answer yet: leave the prompt."""


class ApiAnswers(AnswerSource):
    """An LLM API through the worker's one client; with the cluster's quotas, each call
    waits for its provider's permit as this job's caller."""

    def __init__(self, llm: LLMClient, caller: Caller | None = None) -> None:
        self.llm, self.caller = llm, caller

    def client(self) -> LLMClient:
        if self.caller is not None and isinstance(self.llm, OpenAICompatibleClient):
            return self.llm.for_caller(self.caller)
        return self.llm

    def awaiting(self, messages: list[dict[str, str]]) -> None:
        raise AssertionError("an API answers every call (or fails it)")


class PersonAnswers(AnswerSource):
    """A person's answer to the step ``key`` of ``job``'s stage ``s``."""

    def __init__(self, job: JobRun, s: Stage, key: str) -> None:
        self.job, self.stage, self.key = job, s, key

    def client(self) -> LLMClient:
        return ManualLLM(self.job.manual.answer_of(self.job.job_id, self.key))

    def awaiting(self, messages: list[dict[str, str]]) -> None:
        """Say that the job waits for a person (once), then park the prompt: in this
        order, a prompt anyone can see or answer always has its event, even when the
        worker dies in between (a redelivery parks it; the event is not said twice). An
        ended job takes neither (emit.lua and manual_park.lua refuse)."""
        job, s, key = self.job, self.stage, self.key
        prompt = PendingPrompt(
            key=key, stage=s.name, display_name=s.display_name, messages=messages, since=utcnow()
        )
        start, _ = stage_bounds(job.plan.progress_weights, s.name)
        fields = {
            "stage": s.display_name,
            "status": "waiting",
            "key": key,
            "message": f"waiting for a manual answer to {key}",
        }
        event = Event(EventKind.WAITING_FOR_ANSWER, start, fields)
        job.progress.emit(job.job_id, event, job.ttl, once=f"wait:{key}")
        job.manual.park(job.job_id, key, prompt.model_dump_json(), job.ttl)


# A quota wait ends this long (at most) before the step's slot does, so that the step
# fails with its own cause before the sweeper calls the job stalled.
DEADLINE_MARGIN_S = 5.0


def caller_of(job: JobRun, s: Stage, key: str, slot_s: float, *, may_park: bool) -> Caller:
    """The step's place in the providers' quotas, and how it says it waits: until the
    end of its slot (``JobPlan.step_slot_s``), within the job's deadline."""
    plan = job.plan

    def on_wait(message: str, done: bool) -> None:
        start, _ = stage_bounds(plan.progress_weights, s.name)
        fields = {
            "stage": s.display_name,
            "status": "running" if done else "waiting",
            "key": key,
            "message": f"{key}: {message}",
        }
        event = Event(EventKind.WAITING_FOR_QUOTA, start, fields)
        with contextlib.suppress(StoreUnavailable):  # a paid call goes on regardless
            job.progress.emit(job.job_id, event, job.ttl)

    return Caller(
        job_id=job.job_id,
        key=key,
        batch=plan.priority is Priority.BATCH,
        flow=plan.flow,
        # A judge asks in several orders at once: a step with paid answers in hand
        # must not give its thread back, so only one-call steps park.
        parkable=may_park and plan.priority is Priority.BATCH and s.name not in JUDGED_STEPS,
        deadline=time.time() + slot_s - min(DEADLINE_MARGIN_S, slot_s / 10),
        on_wait=on_wait,
    )


def answer_source(
    job: JobRun, s: Stage, key: str, llm: LLMClient, *, slot_s: float, may_park: bool = False
) -> AnswerSource:
    """A person for the plan's manual steps, else the API."""
    if s.name in job.plan.manual_steps:
        return PersonAnswers(job, s, key)
    return ApiAnswers(llm, caller_of(job, s, key, slot_s, may_park=may_park))
