"""Every Redis key vpsweb uses, in one place (as arq does)."""

from __future__ import annotations

PREFIX = "vpsweb"
JOBS_INDEX = f"{PREFIX}:jobs"  # sorted set: job id -> created timestamp


def job(job_id: str) -> str:
    """Hash: status, plan, timestamps, error, cancel flag."""
    return f"{PREFIX}:job:{job_id}"


def step(job_id: str, name: str) -> str:
    """String: a finished step's JSON output (candidate:N, evaluation, ...)."""
    return f"{PREFIX}:job:{job_id}:step:{name}"


def result(job_id: str) -> str:
    """String: the TranslationOutput JSON."""
    return f"{PREFIX}:job:{job_id}:result"


def events(job_id: str) -> str:
    """Stream: the job's progress events, replayable from the start."""
    return f"{PREFIX}:job:{job_id}:events"


def progress(job_id: str) -> str:
    """Hash: the latest progress snapshot (percent only ever increases)."""
    return f"{PREFIX}:job:{job_id}:progress"


def finished_candidates(job_id: str) -> str:
    """Set: indexes of candidates already counted, so a redelivery counts once."""
    return f"{PREFIX}:job:{job_id}:finished"


def all_job_keys(job_id: str) -> list[str]:
    """Fixed keys of a job (step keys are found by pattern)."""
    return [
        job(job_id),
        result(job_id),
        events(job_id),
        progress(job_id),
        finished_candidates(job_id),
    ]


def step_pattern(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:step:*"


def candidate_step(index: int) -> str:
    return f"candidate:{index}"


def task_id(job_id: str, name: str) -> str:
    """Deterministic Celery task ids, so cancel can revoke them and Flower can group them."""
    return f"{job_id}.{name}"
