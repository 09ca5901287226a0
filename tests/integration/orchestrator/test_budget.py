"""max_cost while a job runs: once its spend reaches max_cost no new LLM call is made,
and the job fails naming its budget, keeping its outputs and what it paid.

An estimate can be wrong, which is why the cap is also kept at run time: here the
workers' price list says the translator's model costs 200 times what the client's
copy says (a price rise the client has not heard of). The client estimates the job
within max_cost and submits it; the workers bill the candidate at their prices, which
takes the spend past max_cost, and the evaluation makes no call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.config import make_config_dir
from tests.helpers.poems import FOG_OPENING
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.errors import JobFailed
from vpsweb.storage.redis import keys

pytestmark = [pytest.mark.integration]

PRICE_RISE = 200
REQUEST = {
    "poem": FOG_OPENING,
    "source_lang": "en",
    "target_lang": "zh-CN",
    "parallel_count": 1,  # one candidate: the spend passes max_cost with nothing in flight
    "offline": True,
}


def _dearer_translator(models: dict[str, Any], _sim_url: str) -> None:
    price = models["models"]["deepseek-chat"]["price"]
    price["input_per_1k"] *= PRICE_RISE
    price["output_per_1k"] *= PRICE_RISE


def test_a_job_stops_calling_once_its_spend_reaches_max_cost(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, models_edit=_dearer_translator)
    try:
        c.add_worker()
        # The client's copy of the config has the old prices.
        client = Client(redis_url=c.redis.url, config=load_config(make_config_dir(tmp_path / "c")))
        estimate = client.estimate(**REQUEST)
        max_cost = round(sum(estimate.expected.cost.values()) * 1.2, 6)
        job = client.submit(**REQUEST, max_cost=max_cost)  # the estimate is within it
        with pytest.raises(JobFailed) as info:
            job.result(timeout=90)
        stats, record = c.sim_stats(), job.record()
        counted = c.store.hget(keys.job(job.id), "spent")
        client.close()
    finally:
        c.close()
    failed, spent = info.value, info.value.spent
    assert spent is not None and estimate.currencies == ["CNY"]
    paid = spent.cost["CNY"]
    assert failed.stage == "Translation Evaluation", failed.cause
    assert failed.cause == f"budget reached: spent {paid:.4g} of max_cost {max_cost:g} CNY"
    assert record.error == failed.cause
    # The candidate was paid for and kept; no call was made after it.
    assert stats["by_step"] == {"initial_translation": 1}
    assert spent.llm_calls == stats["total_requests"] == 1
    assert paid >= max_cost
    assert counted is not None and float(counted) == pytest.approx(paid)
