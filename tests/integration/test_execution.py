"""Worker-side execution in-process against a real Redis (no Celery in the way)."""

from __future__ import annotations

import dataclasses

import pytest

from vpsweb.config import load_config
from vpsweb.models import CandidateResult
from vpsweb.orchestrator import execution
from vpsweb.plan import build_plan
from vpsweb.stages.table import stage
from vpsweb.storage import connect

pytestmark = pytest.mark.integration


def test_unexpected_error_fails_only_that_candidate(redis_server):
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 2},
        load_config(),
        job_id="e0ec0b0e0000",
        offline=True,
    )
    storage = connect(redis_server.url)
    storage.jobs.create([plan])
    svc = execution.Services(storage=storage, config=load_config(), llm=None)  # type: ignore[arg-type]

    def broken(ctx, prior, index):
        raise RuntimeError("template exploded")

    broken_stage = dataclasses.replace(stage("initial_translation"), run=broken)
    ref = execution.run_step(svc, broken_stage, plan.job_id, 1)
    assert ref == {"job_id": plan.job_id, "index": 1, "status": "failed"}
    stored = CandidateResult.model_validate_json(storage.jobs.load_step(plan.job_id, "candidate-1"))
    assert stored.error == "internal error: RuntimeError: template exploded"
    assert storage.jobs.status(plan.job_id).value == "running"  # the job goes on
    assert storage.progress.snapshot(plan.job_id).failed == 1
