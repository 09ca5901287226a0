"""Planning a batch of requests for ``Client.submit_many``: all valid, or none enqueued.

Celery-free and store-free, like ``plan``: validation and planning happen before any
write, so that a bad request in a batch of 500 leaves nothing half-submitted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from vpsweb.config import AppConfig
from vpsweb.domain.admission import require_fits
from vpsweb.domain.models import Priority, TranslationRequest
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.errors import RequestInvalid

Requests = Sequence[TranslationRequest | dict[str, Any]]


def plan_batch(
    requests: Requests,
    config: AppConfig,
    *,
    offline: bool | None = None,
) -> list[JobPlan]:
    """A plan per request, their clocks started together; every invalid request is
    named by its position in one RequestInvalid (not just the first one)."""
    plans, problems = [], []
    for i, request in enumerate(requests):
        try:
            plan = build_plan(request, config, job_id=uuid.uuid4().hex[:12], offline=offline)
            plans.append(require_fits(plan, config))
        except RequestInvalid as exc:
            problems += [f"request {i}: {line}" for line in exc.errors]
    if problems:
        raise RequestInvalid(problems)
    now, batch_id = datetime.now(UTC), uuid.uuid4().hex[:12]
    return [
        p.model_copy(
            update={
                "created_at": now,
                "batch_id": batch_id,
                "priority": p.request.priority or Priority.BATCH,
            }
        )
        for p in plans
    ]
