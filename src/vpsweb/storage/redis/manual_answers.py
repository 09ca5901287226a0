"""Manual mode in Redis: prompts parked for a person, and their answers.

Both live under the job's keys with its retention, so a job waiting for a person
survives every worker and client exiting and a Redis restart (with AOF). Parking
and answering are Lua scripts: an answer is accepted only for a prompt that is
pending in a job that has not ended, and the stage's last answer queues the job
again in the same step, so two people answering at once cannot both resume it.

The scripts touch the job's keys only (one Cluster slot). Parking takes the job out
of the global deadlines set in the same pipeline (lost: the sweeper forgets a waiting
job's deadline); the answer that resumes the job adds its deadline and its submission
after the script said so ('resumed'), and says so again to a person who answers once
more before the job started, so a caller that died in between is made good.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from vpsweb.storage.base import ManualAnswers
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.lua import Lua


@translating
class RedisManualAnswers(ManualAnswers):
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._park = Lua(client, "manual_park.lua")
        self._answer = Lua(client, "manual_answer.lua")

    def park(self, job_id: str, key: str, prompt_json: str, ttl: int) -> bool:
        with self.redis.pipeline(transaction=False) as pipe:
            self._park(
                keys=[keys.job(job_id), keys.pending(job_id)],
                args=[key, prompt_json, ttl],
                client=pipe,
            )
            pipe.zrem(keys.DEADLINES, job_id)  # a person has no deadline
            return bool(pipe.execute()[0])

    def pending(self, job_id: str) -> dict[str, str]:
        return cast(dict[str, str], self.redis.hgetall(keys.pending(job_id)))

    def answer_of(self, job_id: str, key: str) -> str | None:
        return cast(str | None, self.redis.hget(keys.answers(job_id), key))

    def answer(
        self, job_id: str, key: str, text: str, *, stage_keys: list[str], deadline: float, ttl: int
    ) -> str:
        names, args = answer_call(job_id, key, text, stage_keys, deadline, ttl)
        outcome = str(self._answer(keys=names, args=args))
        if outcome == "resumed":
            with self.redis.pipeline(transaction=False) as pipe:
                queue_resume(pipe, job_id, deadline)
                pipe.execute()
        return outcome


def answer_call(
    job_id: str, key: str, text: str, stage_keys: list[str], deadline: float, ttl: int
) -> tuple[list[str], list[Any]]:
    """manual_answer.lua's keys and arguments."""
    names = [keys.job(job_id), keys.pending(job_id), keys.answers(job_id)]
    return names, [key, text, f"{deadline:.3f}", ttl, *stage_keys]


def queue_resume(pipe: Any, job_id: str, deadline: float) -> None:
    """A resumed job's writes outside its slot, on ``pipe`` (sync or asyncio): its
    deadline, then its submission for the dispatchers."""
    pipe.zadd(keys.DEADLINES, {job_id: f"{deadline:.3f}"})
    pipe.xadd(keys.SUBMISSIONS, {"job": job_id})
