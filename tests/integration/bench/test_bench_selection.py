"""`vpsweb bench selection` on a small run: the JSON contract, not the numbers.

The numbers are the simulator's to decide (see simulator/quality.py); what the
bench owes its readers is one JSON object with a row per (bias, judging), and
metrics in their ranges.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_cli

pytestmark = pytest.mark.integration

BIASES = (0.0, 0.3, 0.5)


def test_small_selection_run_prints_one_json_object_with_every_row():
    res = run_cli("bench", "selection", "--jobs", "12", "--json", timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout)  # exactly one object: progress goes to stderr
    rows = {(r["bias"], r["judging"]): r for r in doc["results"]}
    assert set(rows) == {(b, j) for b in BIASES for j in ("single", "multi_order")}
    for (_, judging), r in rows.items():
        assert r["jobs"] == 12
        assert 0 <= r["top1_accuracy"] <= 1
        assert 0 <= r["first_position_win_rate"] <= 1
        assert isinstance(r["defects_selected"], int) and 0 <= r["defects_selected"] <= 12
        assert r["eval_tokens_per_job"] > 0
        if judging == "single":
            assert r["agreement"] is None  # one order cannot disagree with itself
        else:
            assert 0 <= r["agreement"] <= 1
    for b in BIASES:
        single, multi = rows[(b, "single")], rows[(b, "multi_order")]
        assert multi["eval_tokens_per_job"] > single["eval_tokens_per_job"]
    extra = {e["bias"]: e for e in doc["extra_eval_tokens_per_job"]}
    assert set(extra) == set(BIASES) and all(e["extra"] > 0 for e in extra.values())
    assert doc["settings"]["jobs"] == 12 and doc["settings"]["defect_rate"] == 0.15


def test_the_table_names_every_row_and_bad_arguments_are_refused():
    res = run_cli("bench", "selection", "--jobs", "3", "--biases", "0.5", timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "top1" in res.stdout and "multi_order" in res.stdout and "single" in res.stdout
    bad = run_cli("bench", "selection", "--biases", "2", timeout=60)
    assert bad.returncode == 2 and "--biases" in bad.stderr
