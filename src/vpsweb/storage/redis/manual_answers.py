"""Manual mode in Redis: prompts parked for a person, and their answers.

Both live under the job's keys with its retention, so a job waiting for a person
survives every worker and client exiting and a Redis restart (with AOF). Parking
and answering are Lua scripts: an answer is accepted only for a prompt that is
pending in a job that has not ended, and the stage's last answer queues the job
again in the same step, so two people answering at once cannot both resume it.
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
        done = self._park(
            keys=[keys.job(job_id), keys.pending(job_id), keys.DEADLINES],
            args=[key, prompt_json, ttl, job_id],
        )
        return bool(done)

    def pending(self, job_id: str) -> dict[str, str]:
        return cast(dict[str, str], self.redis.hgetall(keys.pending(job_id)))

    def answer_of(self, job_id: str, key: str) -> str | None:
        return cast(str | None, self.redis.hget(keys.answers(job_id), key))

    def answer(
        self, job_id: str, key: str, text: str, *, stage_keys: list[str], deadline: float, ttl: int
    ) -> str:
        names, args = answer_call(job_id, key, text, stage_keys, deadline, ttl)
        outcome = self._answer(keys=names, args=args)
        return str(outcome)


def answer_call(
    job_id: str, key: str, text: str, stage_keys: list[str], deadline: float, ttl: int
) -> tuple[list[str], list[Any]]:
    """manual_answer.lua's keys and arguments."""
    names = [
        keys.job(job_id),
        keys.pending(job_id),
        keys.answers(job_id),
        keys.SUBMISSIONS,
        keys.DEADLINES,
    ]
    return names, [key, text, f"{deadline:.3f}", ttl, job_id, *stage_keys]
