"""Every Redis key vpsweb uses, in one place (as arq does).

Ready for Redis Cluster: a job's keys share its hash tag (``vpsweb:job:{<id>}:…``) and
a batch's its own (``vpsweb:batch:{<id>}:…``), so that every script and transaction of
a job or a batch touches one slot. Keys a command or script uses together share a tag
too (both submission lanes, read by one XREADGROUP; the workers' set and their queues;
the usage summaries and counters; the addresses a submission claims). The global
indexes (jobs, deadlines, batches) are single keys, written beside a job's scripts in
the same pipeline, never inside them (see docs/reliability.md, "Redis Cluster").
"""

from __future__ import annotations

PREFIX = "vpsweb"
JOBS_INDEX = f"{PREFIX}:jobs"  # sorted set: job id -> created timestamp
SUBMISSIONS = f"{PREFIX}:{{submissions}}"  # stream: interactive jobs waiting for a dispatcher
BATCH_SUBMISSIONS = f"{PREFIX}:{{submissions}}:batch"  # stream: batch jobs, read after those
DISPATCHERS = "dispatchers"  # the consumer group of both submission streams
WORKERS = f"{PREFIX}:{{workers}}"  # sorted set: live worker -> heartbeat expiry (epoch s)
WORKER_QUEUES = f"{PREFIX}:{{workers}}:queues"  # hash: worker -> JSON list of its queues
DEADLINES = f"{PREFIX}:deadlines"  # sorted set: job id -> deadline (epoch s), jobs not ended
USAGE_SUMMARIES = f"{PREFIX}:{{usage}}:jobs"  # sorted set: ended job's usage JSON -> end (epoch s)
USAGE_COUNTERS = f"{PREFIX}:{{usage}}:counters"  # hash: "metric|label=value|..." -> cumulative sum
BATCHES_INDEX = f"{PREFIX}:batches"  # sorted set: batch id -> created timestamp
# Pub/sub channel (no key, in no slot): job ends and quorum news for the steps in flight
SIGNALS = f"{PREFIX}:signals"


def batch(batch_id: str) -> str:
    """String: the batch's record (JSON: its members and their jobs)."""
    return f"{PREFIX}:batch:{{{batch_id}}}"


def batch_counters(batch_id: str) -> str:
    """Hash: the record's version, the batch's budget, and its jobs' counters (spent,
    cost:CURRENCY, calls, tokens: added as each step output is stored)."""
    return f"{batch(batch_id)}:counters"


def batch_counted(batch_id: str) -> str:
    """Set: the job steps (``<job>|<step>``) already added to the batch's counters, so
    that a step counted again (a redelivery, a retried pipeline) adds nothing."""
    return f"{batch(batch_id)}:counted"


def address(name: str) -> str:
    """String: the job a content key or an idempotency key points at
    (``content:<sha256>``, ``idem:<sha256>``), kept with the jobs' retention. All share
    one hash tag: a submission claims its addresses in one script (addresses_claim.lua)."""
    return f"{PREFIX}:{{address}}:{name}"


def submissions(lane: str) -> str:
    """Stream: the submissions of one lane ("interactive" or "batch")."""
    return BATCH_SUBMISSIONS if lane == "batch" else SUBMISSIONS


def lock(name: str) -> str:
    """String: a cluster-wide lock's owner (e.g. the sweeper)."""
    return f"{PREFIX}:lock:{name}"


def job(job_id: str) -> str:
    """Hash: status, plan, timestamps, error."""
    return f"{PREFIX}:job:{{{job_id}}}"


def step(job_id: str, key: str) -> str:
    """String: a finished step's JSON output (candidate-0, evaluation, ...)."""
    return f"{job(job_id)}:step:{key}"


def result(job_id: str) -> str:
    """String: the TranslationOutput JSON."""
    return f"{job(job_id)}:result"


def events(job_id: str) -> str:
    """Stream: the job's progress events, replayable from the start."""
    return f"{job(job_id)}:events"


def progress(job_id: str) -> str:
    """Hash: the latest progress snapshot (percent only ever increases)."""
    return f"{job(job_id)}:progress"


def lease(job_id: str, key: str) -> str:
    """String: the owner token of whoever runs this step now (expires unless renewed)."""
    return f"{job(job_id)}:lease:{key}"


def finished_items(job_id: str) -> str:
    """Set: indexes of fan-out items already counted, so a redelivery counts once."""
    return f"{job(job_id)}:finished"


def durations(job_id: str) -> str:
    """List: durations (s) of the fan-out items that succeeded, for the straggler grace."""
    return f"{job(job_id)}:durations"


def pending(job_id: str) -> str:
    """Hash: step key -> JSON of the prompt waiting for a person (manual mode)."""
    return f"{job(job_id)}:pending"


def answers(job_id: str) -> str:
    """Hash: step key -> a person's accepted answer (manual mode)."""
    return f"{job(job_id)}:answers"


def quota(bucket: str) -> str:
    """Hash: a quota bucket's levels, adaptive allowance, pause and counters. The
    provider's name is the hash tag, so that a provider's and its models' keys share a
    Redis Cluster slot (the scripts touch them together)."""
    provider, _, model = bucket.partition("/")
    return f"{PREFIX}:quota:{{{provider}}}" + (f":m:{model}" if model else "")


def quota_in_flight(bucket: str) -> str:
    """Sorted set: the bucket's permits -> lapse time (epoch s)."""
    return f"{quota(bucket)}:inflight"


def quota_queue(provider: str) -> str:
    """Sorted set: calls waiting for the provider -> priority class and fair-share tag."""
    return f"{quota(provider)}:queue"


def quota_seen(provider: str) -> str:
    """Sorted set: waiting calls -> when they last asked (stale ones leave the queue)."""
    return f"{quota(provider)}:seen"


def quota_flows(provider: str) -> str:
    """Hash: flow (batch or job) -> its last fair-share tag; ``_v`` the last one served."""
    return f"{quota(provider)}:flows"


def quota_batches(provider: str) -> str:
    """Sorted set: batch flows -> when they last asked (a batch beside others waits its
    turn by its tag, see quota_acquire.lua)."""
    return f"{quota(provider)}:batches"


def quota_wake(provider: str) -> str:
    """Prefix of the list a waiting call blocks on (its ticket appended). quota_settle.lua
    builds the same name from its first key (``quota(provider)``): keep the two equal."""
    return f"{quota(provider)}:wake:"


def fence(job_id: str) -> str:
    """String, for a moment (PX): the write a reader or a lagging writer makes before
    WAIT, so that WAIT covers everything written to the job up to then."""
    return f"{job(job_id)}:fence"
