"""Fallback models against a real cluster (Redis, Celery workers, the simulator over
HTTP, the openai SDK): steps whose model the provider refuses for good (401, 404) are
answered by their fallback model; the job succeeds and its result says which model
answered, instead of which, and why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.config import use_models

pytestmark = [pytest.mark.integration]


def refused_with_fallbacks(d: dict[str, Any]) -> None:
    """The simulator answers sim-fail401 with 401 and sim-fail404 with 404, always."""
    use_models(d, initial_translation="sim-fail401", editor_review="sim-fail404")
    steps = d["modes"]["hybrid"]["steps"]
    steps["initial_translation"]["fallback"] = ["sim-chat"]
    steps["editor_review"]["fallback"] = ["sim-chat"]


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp=tmp_path, edit=refused_with_fallbacks)
    try:
        c.add_worker()
        yield c
    finally:
        c.close()


def test_a_refused_model_is_replaced_by_its_fallback(cluster: Cluster) -> None:
    c = cluster
    job = c.submit(c.client(), parallel_count=2, workflow_mode="hybrid")
    out = job.result(timeout=120)

    review = out.editor_review.metrics
    assert review is not None
    assert (review.model.model, review.fallback_from) == ("sim-chat", "sim-fail404")
    assert review.fallback_reason is not None and "HTTP 404" in review.fallback_reason
    for cand in out.candidates:
        assert cand.ok, cand.error
        m = cand.metrics
        assert m is not None and (m.model.model, m.fallback_from) == ("sim-chat", "sim-fail401")
        assert m.fallback_reason is not None and "HTTP 401" in m.fallback_reason
        # The refused call was made and counted (a 4xx is final: one attempt).
        assert m.attempts == 2 and m.billed_calls == 1
    untouched = out.revision.metrics
    assert untouched is not None and untouched.fallback_from is None

    fallbacks = [w for w in out.warnings if w.kind == "model_fallback"]
    assert len(fallbacks) == 3  # two candidates and the editor
    assert any("its model sim-fail404 failed" in w.message for w in fallbacks)
    assert c.sim_stats()["by_model"].get("sim-fail404") == 1
