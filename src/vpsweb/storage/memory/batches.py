"""Batches in memory: the Redis store's rules (see storage.redis.batches) in one
process. A submission's look-up, decision and writes are one critical section, which
is what the Redis store's compare-and-set of the addresses (addresses_claim.lua)
amounts to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vpsweb.domain.batch import BatchRecord, BatchTally
from vpsweb.domain.plan import JobPlan
from vpsweb.storage.batches import (
    MEMBER_FIELDS,
    Batches,
    BatchWrite,
    Decide,
    Found,
    SpendCheck,
    tally_of,
)
from vpsweb.storage.memory import state as names
from vpsweb.storage.memory.progress import MemoryProgressLog
from vpsweb.storage.memory.state import Keyspace
from vpsweb.storage.memory.store import MemoryJobStore
from vpsweb.storage.spend import (
    BATCH_CALLS,
    BATCH_SPENT,
    BATCH_TOKENS,
    COST_PREFIX,
    SPENT_FIELD,
    Billed,
    billed,
)

INDEX = ("batches",)  # batch id -> created timestamp


def _record(batch_id: str) -> names.Name:
    return ("batch", batch_id)


def _counters(batch_id: str) -> names.Name:
    return ("batch", batch_id, "counters")


def _address(name: str) -> names.Name:
    return ("address", name)


class MemoryBatches(Batches):
    def __init__(self, space: Keyspace, jobs: MemoryJobStore, progress: MemoryProgressLog) -> None:
        self.space, self.jobs, self.progress = space, jobs, progress

    def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite:
        with self.space.lock:
            found: dict[str, Found] = {}
            for name in addresses:
                job_id = self.space.get(_address(name))
                if job_id is not None:
                    found[name] = Found(job_id, self.jobs.fields(job_id).get("status"))
            write = decide(found)
            self._write(write)
            return write

    def _write(self, write: BatchWrite) -> None:
        space, ttl = self.space, write.ttl
        self.jobs.create(write.plans)
        if (record := write.record) is not None:
            space.put(_record(record.batch_id), record.model_dump_json(), ttl)
            counters = space.setdefault(_counters(record.batch_id), dict)
            budget = "" if record.budget is None else repr(record.budget)
            counters.update(version=str(record.version), budget=budget)
            space.expire(_counters(record.batch_id), ttl)
            index = space.setdefault(INDEX, dict)
            index[record.batch_id] = record.created_at.timestamp()
            newest = record.run_started_at.timestamp()
            for old in [b for b, at in index.items() if at <= newest - ttl]:
                del index[old]
        for address, job_id in write.addresses.items():
            space.put(_address(address), job_id, ttl)
        for job_id in write.keep:
            for kept in (names.job(job_id), ("result", job_id), names.progress(job_id)):
                space.expire(kept, ttl)
            space.expire(names.events(job_id), ttl)

    def count_step(self, batch_id: str, job_id: str, key: str, payload: str, ttl: int) -> None:
        self.count(batch_id, billed(payload), f"{job_id}|{key}", ttl)

    def count(self, batch_id: str, bill: Billed, step: str, ttl: int) -> None:
        """Add a stored step's bill to its batch's counters once per job step (``step``:
        ``<job>|<step>``), as batch_count.lua: a batch that is gone is not re-created."""
        with self.space.lock:
            counters = self.space.get(_counters(batch_id))
            if counters is None:
                return
            counted = self.space.setdefault(("batch", batch_id, "counted"), set)
            if step in counted:
                return
            counted.add(step)
            self.space.expire(("batch", batch_id, "counted"), ttl)
            add: dict[str, float] = {BATCH_CALLS: bill.calls, BATCH_TOKENS: bill.tokens}
            if bill.cost > 0:
                add |= {BATCH_SPENT: bill.cost, COST_PREFIX + (bill.currency or "?"): bill.cost}
            for field, amount in add.items():
                total = float(counters.get(field) or 0) + amount
                counters[field] = repr(total) if isinstance(amount, float) else str(int(total))

    def get(self, batch_id: str) -> BatchRecord | None:
        with self.space.lock:
            raw = self.space.get(_record(batch_id))
        return BatchRecord.model_validate_json(raw) if raw else None

    def recent(self, limit: int = 20) -> list[BatchRecord]:
        with self.space.lock:
            index = dict(self.space.get(INDEX) or {})
        newest = sorted(index, key=lambda b: (index[b], b), reverse=True)[:limit]
        return [r for r in map(self.get, newest) if r is not None]

    def tally(self, record: BatchRecord) -> BatchTally:
        with self.space.lock:
            counters: dict[str, str] = dict(self.space.get(_counters(record.batch_id)) or {})
            members = [self._member(j) for j in record.job_ids]
        return tally_of(counters, members)

    def _member(self, job_id: str) -> list[Any]:
        data: dict[str, Any] = self.jobs.fields(job_id)
        return [data.get(f) for f in MEMBER_FIELDS]

    def plans(self, job_ids: Sequence[str]) -> list[JobPlan | None]:
        return [self.jobs.plan(j) for j in job_ids]

    def spend_check(self, job_id: str, batch_id: str, *, late: bool = False) -> SpendCheck:
        with self.space.lock:
            counters = dict(self.space.get(_counters(batch_id)) or {})
            if late:
                status, left, spent = self.progress.straggler_check(job_id)
            else:
                data = self.jobs.fields(job_id)
                status, left = data.get("status") or None, None
                spent = float(data.get(SPENT_FIELD) or 0.0)
        return SpendCheck(
            status=status,
            job_spent=spent,
            batch_spent=float(counters.get(BATCH_SPENT) or 0.0),
            budget=float(counters["budget"]) if counters.get("budget") else None,
            late_in=left,
        )
