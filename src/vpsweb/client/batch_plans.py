"""Planning a batch's entries, for both clients and ``submit_many``: all valid, or none
enqueued.

Celery-free and store-free, like ``plan``: validation and planning happen before any
write, so that a bad entry in a batch of 500 leaves nothing half-submitted; every bad
entry is named by where it came from (its file and line, or its position).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vpsweb.client.core import estimate_request
from vpsweb.config import AppConfig
from vpsweb.domain.admission import require_fits
from vpsweb.domain.batch import BatchEstimate, BatchRecord, EntryLike, content_key, estimate_of
from vpsweb.domain.estimate import JobEstimate, budget_currency, estimate_job
from vpsweb.domain.models import Priority, TranslationRequest
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.errors import RequestInvalid

Requests = Sequence[TranslationRequest | dict[str, Any]]
Entry = TranslationRequest | Mapping[str, Any] | EntryLike
Entries = Sequence[Entry]


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Planned:
    """An entry, validated and planned (with a fresh job id), and its content key."""

    name: str
    where: str
    plan: JobPlan
    key: str


def _entry(i: int, entry: Entry) -> tuple[str, str, TranslationRequest | dict[str, Any]]:
    """An entry's name, where it came from, and its request (a plain request is named
    by its position)."""
    if isinstance(entry, TranslationRequest):
        return f"poem-{i + 1:03d}", f"request {i}", entry
    if isinstance(entry, Mapping):
        return f"poem-{i + 1:03d}", f"request {i}", dict(entry)
    return entry.name, entry.where, entry.request


def plan_one(
    request: TranslationRequest | dict[str, Any],
    config: AppConfig,
    *,
    offline: bool | None,
    manual: bool | list[str] = False,
) -> JobPlan:
    plan = build_plan(request, config, job_id=uuid.uuid4().hex[:12], offline=offline, manual=manual)
    return require_fits(plan, config)


def plan_entries(
    entries: Entries,
    config: AppConfig,
    *,
    batch_id: str,
    offline: bool | None = None,
    budget: float | None = None,
) -> list[Planned]:
    """A plan per entry, their clocks started together, at batch priority (unless a
    request says otherwise), in batch ``batch_id``; every invalid entry is named by
    where it came from in one RequestInvalid (not just the first one)."""
    found: list[tuple[str, str, JobPlan]] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        name, where, request = _entry(i, entry)
        try:
            found.append((name, where, plan_one(request, config, offline=offline)))
        except RequestInvalid as exc:
            problems += [f"{where}: {line}" for line in exc.errors]
    names = [name for name, _, _ in found]
    problems += [f"{n}: the name is used by more than one entry" for n in _duplicates(names)]
    if budget is not None and not budget > 0:
        problems.append(f"budget: must be above 0, got {budget:g}")
    if not entries:
        problems.append("a batch needs at least one poem")
    if problems:
        raise RequestInvalid(problems)
    return [Planned(n, w, p, content_key(p)) for n, w, p in batch_plans(found, batch_id, budget)]


def _duplicates(names: list[str]) -> list[str]:
    return sorted(n for n, times in Counter(names).items() if times > 1)


def batch_plans(
    found: list[tuple[str, str, JobPlan]], batch_id: str, budget: float | None
) -> list[tuple[str, str, JobPlan]]:
    now = datetime.now(UTC)
    return [
        (
            name,
            where,
            plan.model_copy(
                update={
                    "created_at": now,
                    "batch_id": batch_id,
                    "priority": plan.request.priority or Priority.BATCH,
                    "batch_budget": budget,
                }
            ),
        )
        for name, where, plan in found
    ]


def plan_batch(
    requests: Requests, config: AppConfig, *, offline: bool | None = None
) -> list[JobPlan]:
    """Plans for ``submit_many``: validated all or none (RequestInvalid names each bad
    request by its position), in one new batch."""
    planned = plan_entries(requests, config, batch_id=new_batch_id(), offline=offline)
    return [p.plan for p in planned]


def currency_of(plans: Sequence[JobPlan], config: AppConfig) -> str:
    """The batch's one currency ("" when its models are priced in several)."""
    found = {budget_currency(p, config) for p in plans}
    return found.pop() if len(found) == 1 else ""


def estimate_entries(
    entries: Entries, config: AppConfig, *, offline: bool | None, budget: float | None
) -> BatchEstimate:
    """What submitting the entries would cost (each as ``estimate_request``: validated,
    never refused for its own max_cost), summed; RequestInvalid naming each bad entry.
    Every entry is counted: content addressing can only lower what a submission pays."""
    found, problems = [], []
    for i, entry in enumerate(entries):
        _, where, request = _entry(i, entry)
        try:
            found.append(estimate_request(request, config, offline=offline))
        except RequestInvalid as exc:
            problems += [f"{where}: {line}" for line in exc.errors]
    if problems:
        raise RequestInvalid(problems)
    return estimate_of(found, budget)


def estimates(planned: Sequence[Planned], config: AppConfig) -> list[JobEstimate]:
    return [estimate_job(p.plan, config) for p in planned]


def replan(
    record: BatchRecord,
    slots: Sequence[int],
    plans: Sequence[JobPlan | None],
    config: AppConfig,
    *,
    budget: float | None,
) -> list[Planned]:
    """New plans (current config, fresh ids) for the members in ``slots`` from their
    jobs' plans (the request, offline, manual steps); RequestInvalid naming each member
    whose job is gone or whose request this config refuses now."""
    problems, found = [], []
    for slot, old in zip(slots, plans, strict=True):
        member = record.entries[slot]
        if old is None:
            problems.append(f"{member.where}: its job {member.job_id} is no longer stored")
            continue
        try:
            plan = plan_one(old.request, config, offline=old.offline, manual=old.manual_steps)
            found.append((member.name, member.where, plan))
        except RequestInvalid as exc:
            problems += [f"{member.where}: {line}" for line in exc.errors]
    if problems:
        raise RequestInvalid(problems)
    return [
        Planned(n, w, p, content_key(p)) for n, w, p in batch_plans(found, record.batch_id, budget)
    ]
