"""Worker-side execution in-process against a real Redis (no Celery in the way)."""

from __future__ import annotations

import pytest

from vpsweb.config import load_config
from vpsweb.models import CandidateResult
from vpsweb.orchestrator import execution, keys
from vpsweb.orchestrator.store import JobStore
from vpsweb.plan import build_plan

pytestmark = pytest.mark.integration


def test_unexpected_error_fails_only_that_candidate(redis_server, monkeypatch):
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 2},
        load_config(),
        job_id="exec-bug",
        offline=True,
    )
    store = JobStore.from_url(redis_server.url)
    store.create(plan)

    def broken(ctx, index):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(execution, "translate_candidate", broken)
    ref = execution.run_candidate(redis_server.url, plan.job_id, 1)
    assert ref == {"job_id": plan.job_id, "index": 1, "status": "failed"}
    stored = CandidateResult.model_validate_json(
        store.load_step(plan.job_id, keys.candidate_step(1))
    )
    assert stored.error == "internal error: RuntimeError: template exploded"
    assert store.status(plan.job_id).value == "running"  # the job goes on
    snap = store.redis.hgetall(keys.progress(plan.job_id))
    assert snap["failed"] == "1"
