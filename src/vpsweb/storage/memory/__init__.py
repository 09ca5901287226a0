"""The memory store: every storage interface in one process, with Redis's rules.

For unit tests (lease, redelivery and ending rules in milliseconds, with a
``ManualClock`` instead of sleeps) and for in-process runs that need no Redis.
The same contract suite (tests/unit/storage/contract) runs against this store and
the Redis one. Thread-safe: one lock for the whole store; not shared between
processes.
"""

from __future__ import annotations

from vpsweb.storage.base import Storage
from vpsweb.storage.memory.batches import MemoryBatches
from vpsweb.storage.memory.parts import (
    MemoryLeases,
    MemoryManualAnswers,
    MemoryPresence,
    MemoryUsageLog,
)
from vpsweb.storage.memory.progress import MemoryProgressLog
from vpsweb.storage.memory.quotas import MemoryQuotas
from vpsweb.storage.memory.signals import MemorySignals
from vpsweb.storage.memory.state import Clock, Keyspace, ManualClock
from vpsweb.storage.memory.steps import MemoryStepLog
from vpsweb.storage.memory.store import MemoryJobStore

__all__ = [
    "Keyspace",
    "ManualClock",
    "MemoryBatches",
    "MemoryJobStore",
    "MemoryLeases",
    "MemoryManualAnswers",
    "MemoryPresence",
    "MemoryProgressLog",
    "MemoryQuotas",
    "MemorySignals",
    "MemoryStepLog",
    "MemoryUsageLog",
    "memory_storage",
]


def memory_storage(
    *, clock: Clock | None = None, claim_idle_ms: int | None = None, block_ms: int = 1000
) -> Storage:
    """Every part over one keyspace.

    Options (keyword-only):
      clock: epoch seconds for lease expiry, retention, deadlines and heartbeats
        (default ``time.time``; a ``ManualClock`` in tests).
      claim_idle_ms: see MemoryJobStore.
      block_ms: see MemoryProgressLog.
    """
    space = Keyspace(clock)
    jobs = (
        MemoryJobStore(space)
        if claim_idle_ms is None
        else MemoryJobStore(space, claim_idle_ms=claim_idle_ms)
    )
    progress = MemoryProgressLog(space, block_ms=block_ms)
    leases = MemoryLeases(space)
    quotas = MemoryQuotas(space)
    batches = MemoryBatches(space, jobs, progress)
    return Storage(
        jobs=jobs,
        progress=progress,
        leases=leases,
        presence=MemoryPresence(space),
        usage=MemoryUsageLog(space),
        manual=MemoryManualAnswers(space),
        steps=MemoryStepLog(jobs, progress, leases, quotas, batches),
        batches=batches,
        quotas=quotas,
        signals=MemorySignals(space),
    )
