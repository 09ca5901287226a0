"""Batches for both clients, with no I/O: deciding, from what a submission's addresses
point at, which jobs to reuse and which to create (``Submission.decide``, run by
``Batches.submit`` inside its transaction, so it is pure and may run twice), and what
the drivers (``sync_batch``, ``aio_batch``) do between their reads and writes. The
entries are planned by ``batch_plans``.

Reuse, per entry, in this order:

* its ``idempotency_key`` was seen (within the retention) and its job still exists:
  that job, whatever its status (a retried submission is the same submission);
* unless ``force``: its content key points at a job that succeeded or is queued or
  running: that job (nothing is paid again); failed, cancelled or expired: a new job;
* unless ``force``: an earlier entry of the same submission with the same content key
  (or idempotency key): its job.

A batch's ``budget`` refuses the submission up front when the estimated cost of its
new jobs (plus what the batch spent, on a resume) is above it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vpsweb.client.batch_plans import (
    Entries,
    Planned,
    currency_of,
    estimates,
    new_batch_id,
    plan_entries,
    replan,
)
from vpsweb.config import AppConfig
from vpsweb.domain.batch import (
    TERMINAL,
    BatchEvent,
    BatchMember,
    BatchRecord,
    BatchResult,
    BatchTally,
    budget_problems,
    content_address,
    estimate_of,
    idempotency_address,
)
from vpsweb.domain.estimate import JobEstimate
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import RequestInvalid
from vpsweb.storage.batches import BatchWrite, Found

REUSABLE = frozenset({"succeeded", "queued", "running", "waiting"})
RESUMABLE = frozenset({"failed", "cancelled", None})  # None: the job is gone


@dataclass
class Submission:
    """A batch submission (or a resume: ``base`` is the batch's record, ``slots`` the
    indexes of its members being given jobs again) and what it decides, given what its
    addresses point at. ``costs``: each planned entry's estimate (for the budget)."""

    batch_id: str
    name: str
    planned: list[Planned]
    ttl: int
    currency: str = ""
    budget: float | None = None
    force: bool = False
    costs: list[JobEstimate] | None = None
    spent: float = 0.0
    base: BatchRecord | None = None
    slots: list[int] = field(default_factory=list)

    def addresses(self) -> list[str]:
        found: dict[str, None] = {}
        for p in self.planned:
            if (key := p.plan.request.idempotency_key) is not None:
                found[idempotency_address(key)] = None
            if not self.force:
                found[content_address(p.key)] = None
        return list(found)

    def decide(self, found: Mapping[str, Found]) -> BatchWrite:
        members, plans, new, written = self._members(found)
        if self.costs is not None:
            problems = budget_problems(
                estimate_of([self.costs[i] for i in new], self.budget), self.spent
            )
            if problems:
                raise RequestInvalid(problems)
        record = self._record(members)
        kept = {m.job_id for m in members if m.reused}
        if self.base is not None:  # the members not resumed last as long as the batch now
            kept |= {m.job_id for i, m in enumerate(self.base.entries) if i not in self.slots}
        return BatchWrite(
            jobs=[m.job_id for m in members],
            ttl=self.ttl,
            plans=plans,
            record=record,
            addresses=written,
            keep=sorted(kept - {p.job_id for p in plans}),
        )

    def _members(
        self, found: Mapping[str, Found]
    ) -> tuple[list[BatchMember], list[JobPlan], list[int], dict[str, str]]:
        """Each planned entry's member (reused job or new one), the new jobs' plans, the
        indexes of the entries that get one, and the addresses to write (address ->
        job: the new jobs', and the reused ones' kept alive)."""
        taken: dict[str, str] = {}  # address -> job id, in this submission
        members, plans, new = [], [], []
        for i, p in enumerate(self.planned):
            job_id, how = self._reuse(p, found, taken)
            if job_id is None:
                job_id = p.plan.job_id
                plans.append(p.plan)
                new.append(i)
            for address in self._own(p, how):
                taken.setdefault(address, job_id)
            members.append(
                BatchMember(
                    name=p.name,
                    where=p.where,
                    job_id=job_id,
                    content_key=p.key,
                    reused=job_id != p.plan.job_id,
                )
            )
        return members, plans, new, taken

    def _own(self, p: Planned, how: str) -> list[str]:
        """The addresses an entry's job answers to: its idempotency key's, and its
        content key's unless ``force`` or the job was found by idempotency key (a
        content address moves only to a job that may be reused for it)."""
        key = p.plan.request.idempotency_key
        own = [idempotency_address(key)] if key is not None else []
        return own if self.force or how == "idempotency" else [*own, content_address(p.key)]

    def _reuse(
        self, p: Planned, found: Mapping[str, Found], taken: dict[str, str]
    ) -> tuple[str | None, str]:
        """The job the entry reuses (None: a new one), and how it was found."""
        key = p.plan.request.idempotency_key
        if key is not None:
            address = idempotency_address(key)
            if address in taken:
                return taken[address], "idempotency"
            if (seen := found.get(address)) is not None and seen.status is not None:
                return seen.job_id, "idempotency"
        if self.force:
            return None, "new"
        address = content_address(p.key)
        if address in taken:
            return taken[address], "content"
        seen = found.get(address)
        if seen is not None and seen.status in REUSABLE:
            return seen.job_id, "content"
        return None, "new"

    def _record(self, members: list[BatchMember]) -> BatchRecord:
        now = datetime.now(UTC)
        if self.base is None:
            return BatchRecord(
                batch_id=self.batch_id,
                name=self.name,
                created_at=now,
                run_started_at=now,
                budget=self.budget,
                currency=self.currency,
                entries=members,
            )
        entries = list(self.base.entries)
        for slot, member in zip(self.slots, members, strict=True):
            old = entries[slot]
            previous = [*old.previous, old.job_id]
            entries[slot] = member.model_copy(update={"previous": previous})
        return self.base.model_copy(
            update={
                "version": self.base.version + 1,
                "run_started_at": now,
                "budget": self.budget,
                "currency": self.base.currency or self.currency,
                "entries": entries,
            }
        )


def single(plan: JobPlan) -> tuple[list[str], Any]:
    """An idempotent single submission's address and decision: the job its key points
    at while that job exists, else ``plan``'s new job (written with the key)."""
    assert plan.request.idempotency_key is not None
    address = idempotency_address(plan.request.idempotency_key)

    def decide(found: Mapping[str, Found]) -> BatchWrite:
        seen = found.get(address)
        if seen is not None and seen.status is not None:
            return BatchWrite(jobs=[seen.job_id], ttl=plan.retention_s)
        return BatchWrite(
            jobs=[plan.job_id],
            ttl=plan.retention_s,
            plans=[plan],
            addresses={address: plan.job_id},
        )

    return [address], decide


def resumable(states: Sequence[str | None]) -> list[int]:
    """The members a resume gives new jobs: failed, cancelled, or gone."""
    return [i for i, s in enumerate(states) if s in RESUMABLE]


# --- what the drivers (sync and asyncio) do between their reads and writes ------------


def prepare_submit(
    entries: Entries,
    config: AppConfig,
    *,
    name: str,
    budget: float | None,
    force: bool,
    offline: bool | None,
) -> Submission:
    """A new batch's submission: every entry validated and planned (RequestInvalid naming
    each bad one; nothing is written), estimated when there is a budget."""
    batch_id = new_batch_id()
    planned = plan_entries(entries, config, batch_id=batch_id, offline=offline, budget=budget)
    plans = [p.plan for p in planned]
    return Submission(
        batch_id=batch_id,
        name=name,
        planned=planned,
        ttl=config.pipeline.retention_s,
        currency=currency_of(plans, config),
        budget=budget,
        force=force,
        costs=estimates(planned, config) if budget is not None else None,
    )


def prepare_resume(
    record: BatchRecord,
    tally: BatchTally,
    plans: Sequence[JobPlan | None],
    slots: list[int],
    config: AppConfig,
    *,
    force: bool,
    budget: float | None,
) -> Submission:
    """A resume's submission: the members in ``slots`` (``resumable``) planned again from
    their jobs' ``plans``, under the batch's budget (``budget``, or the one it had),
    counting what the batch spent so far."""
    budget = record.budget if budget is None else budget
    planned = replan(record, slots, plans, config, budget=budget)
    return Submission(
        batch_id=record.batch_id,
        name=record.name,
        planned=planned,
        ttl=config.pipeline.retention_s,
        currency=currency_of([p.plan for p in planned], config),
        budget=budget,
        force=force,
        costs=estimates(planned, config) if budget is not None else None,
        spent=tally.spent,
        base=record,
        slots=slots,
    )


def follow_every_s(members: int) -> float:
    """How often a follower (``events()``, the CLI's and the web page's views) reads a
    batch: every half second up to 250 members, then a second per 500, two at most. A
    read is one round trip, but redis-py packs and parses a command per member (~3 ms
    of client CPU per 100), so following a 500-job batch costs ~3 % of a core, not 13 %."""
    return min(2.0, max(0.5, members / 500))


def unfinished(record: BatchRecord, tally: BatchTally) -> list[str]:
    """The member jobs not ended (each once): what ``cancel`` stops."""
    found = [
        m.job_id
        for m, s in zip(record.entries, tally.members, strict=True)
        if s.status is not None and s.status not in TERMINAL
    ]
    return list(dict.fromkeys(found))


def member_named(record: BatchRecord, name: str) -> BatchMember:
    return next(m for m in record.entries if m.name == name)


def result_for(member: BatchMember, event: BatchEvent, raw: str | None) -> BatchResult:
    """A member's result from its terminal event (and, when it succeeded, its stored
    output)."""
    status = {"job_succeeded": "succeeded", "job_cancelled": "cancelled"}.get(event.kind, "failed")
    if event.cause is not None and "no longer stored" in event.cause:
        status = "expired"
    if status != "succeeded":
        return BatchResult(member=member, status=status, error=event.cause or status)
    if raw is None:
        return BatchResult(member=member, status="expired", error="its result has expired")
    return BatchResult(
        member=member, status=status, output=TranslationOutput.model_validate_json(raw)
    )
