"""Every Redis key vpsweb uses, in one place (as arq does)."""

from __future__ import annotations

PREFIX = "vpsweb"
JOBS_INDEX = f"{PREFIX}:jobs"  # sorted set: job id -> created timestamp
SUBMISSIONS = f"{PREFIX}:submissions"  # stream: jobs waiting for a dispatcher
DISPATCHERS = "dispatchers"  # the consumer group of SUBMISSIONS
WORKERS = f"{PREFIX}:workers"  # sorted set: live worker -> heartbeat expiry (epoch s)
WORKER_QUEUES = f"{PREFIX}:workers:queues"  # hash: worker -> JSON list of its queues
DEADLINES = f"{PREFIX}:deadlines"  # sorted set: job id -> deadline (epoch s), jobs not ended
USAGE_SUMMARIES = f"{PREFIX}:usage:jobs"  # sorted set: ended job's usage JSON -> end (epoch s)
USAGE_COUNTERS = f"{PREFIX}:usage:counters"  # hash: "metric|label=value|..." -> cumulative sum


def lock(name: str) -> str:
    """String: a cluster-wide lock's owner (e.g. the sweeper)."""
    return f"{PREFIX}:lock:{name}"


def job(job_id: str) -> str:
    """Hash: status, plan, timestamps, error."""
    return f"{PREFIX}:job:{job_id}"


def step(job_id: str, key: str) -> str:
    """String: a finished step's JSON output (candidate-0, evaluation, ...)."""
    return f"{PREFIX}:job:{job_id}:step:{key}"


def result(job_id: str) -> str:
    """String: the TranslationOutput JSON."""
    return f"{PREFIX}:job:{job_id}:result"


def events(job_id: str) -> str:
    """Stream: the job's progress events, replayable from the start."""
    return f"{PREFIX}:job:{job_id}:events"


def progress(job_id: str) -> str:
    """Hash: the latest progress snapshot (percent only ever increases)."""
    return f"{PREFIX}:job:{job_id}:progress"


def lease(job_id: str, key: str) -> str:
    """String: the owner token of whoever runs this step now (expires unless renewed)."""
    return f"{PREFIX}:job:{job_id}:lease:{key}"


def finished_items(job_id: str) -> str:
    """Set: indexes of fan-out items already counted, so a redelivery counts once."""
    return f"{PREFIX}:job:{job_id}:finished"


def durations(job_id: str) -> str:
    """List: durations (s) of the fan-out items that succeeded, for the straggler grace."""
    return f"{PREFIX}:job:{job_id}:durations"


def pending(job_id: str) -> str:
    """Hash: step key -> JSON of the prompt waiting for a person (manual mode)."""
    return f"{PREFIX}:job:{job_id}:pending"


def answers(job_id: str) -> str:
    """Hash: step key -> a person's accepted answer (manual mode)."""
    return f"{PREFIX}:job:{job_id}:answers"
