"""A job's spend: the cost of each step output, counted once when it is stored, and
read with the status (or the straggler check) in one round trip."""

from __future__ import annotations

import json

from tests.helpers.storage_backends import Backend
from vpsweb.storage import JobStatus
from vpsweb.storage.spend import billed_cost

TTL = 600


def _output(cost: float) -> str:
    return json.dumps({"translation": "x", "metrics": {"usage": {"cost": cost}}})


def _finish(store: Backend, job_id: str, key: str, payload: str) -> str:
    return store.storage.steps.finish(
        job_id, key, payload, owner="A", ttl=TTL, end=None, once="", item=None
    )


def test_billed_cost_reads_the_metrics_of_any_output() -> None:
    assert billed_cost(_output(0.0123)) == 0.0123
    assert billed_cost('{"translation": "no metrics"}') == 0.0
    assert billed_cost('{"metrics": null}') == 0.0
    assert billed_cost("not json") == 0.0


def test_each_stored_output_adds_its_cost_once(store: Backend) -> None:
    plan = store.job()
    jobs, job = store.storage.jobs, plan.job_id
    assert jobs.status_and_spent(job) == (JobStatus.QUEUED, 0.0)
    assert _finish(store, job, "candidate-0", _output(0.01)) == _output(0.01)
    assert _finish(store, job, "evaluation", _output(0.0025))
    # A redelivery's output is not stored (the first stands), so it is not paid twice.
    assert _finish(store, job, "evaluation", _output(0.5)) == _output(0.0025)
    status, spent = jobs.status_and_spent(job)
    assert status is JobStatus.QUEUED and abs(spent - 0.0125) < 1e-9
    assert abs(store.storage.progress.straggler_check(job)[2] - 0.0125) < 1e-9


def test_an_unknown_job_has_no_status_and_no_spend(store: Backend) -> None:
    assert store.storage.jobs.status_and_spent("0123456789ab") == (None, 0.0)
    # An output stored for a job that is gone does not re-create its record.
    _finish(store, "0123456789ab", "candidate-0", _output(0.01))
    assert store.storage.jobs.status_and_spent("0123456789ab") == (None, 0.0)
    assert store.storage.progress.straggler_check("0123456789ab") == (None, None, 0.0)
