"""The bench harness on a tiny scenario: checks the output's structure, not its speed."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_tiny_writes_structured_results(tmp_path):
    res = run_cli("bench", "--tiny", "--latency-ms", "100", "--output", str(tmp_path), timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Parallel scaling" in res.stdout and "Throughput" in res.stdout
    files = list(tmp_path.glob("bench-tiny-*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc["profile"] == "tiny" and doc["latency_ms"] == 100
    r = doc["results"]
    assert set(r) == {"scaling", "overhead", "throughput", "memory", "cost", "longtail", "capacity"}
    by_n = r["scaling"]["by_n"]
    assert set(by_n) == {"1", "2"}
    for row in by_n.values():
        assert set(row["makespan_s"]) == {"median", "min", "max", "p95", "n"}
        assert row["makespan_s"]["min"] <= row["makespan_s"]["median"] <= row["makespan_s"]["max"]
        assert row["critical_path_s"]["median"] > 0
    assert by_n["1"]["ratio_to_n1"] == 1.0
    assert by_n["1"]["speedup_vs_sequential"] is not None
    assert set(r["scaling"]["hop_gaps"]) == {
        "submit->initial_translation",
        "initial_translation->evaluation",
        "evaluation->editor_review",
        "editor_review->translator_revision",
        "translator_revision->revision_check",
        "revision_check->finalized",
    }
    assert r["overhead"]["n"] == 2 and r["overhead"]["makespan_ratio"] > 0
    raw = r["overhead"]["raw_canvas_latency_s"]
    assert raw["n"] >= 2 and 0 < raw["median"] < 5  # a canvas of no-op tasks, measured
    assert isinstance(r["overhead"]["target_met"], bool)
    tp = r["throughput"]["by_processes"]["1"]
    assert tp["jobs"] == 3 and tp["ratio_to_bound"] > 0 and tp["bound_jobs_per_min"] > 0
    assert r["memory"]["peak_rss_mb"] >= r["memory"]["idle_rss_mb"] > 0
    assert set(r["cost"]) == {"hybrid", "reasoning", "non_reasoning"}
    assert r["cost"]["hybrid"]["1"]["tokens"] > 0
    tail = r["longtail"]["by_policy"]
    assert set(tail) == {"wait_all", "default"} and set(tail["wait_all"]) == {"1", "4"}
    for rows in tail.values():
        assert rows["1"]["ratio_to_n1"] == 1.0 and 0 < rows["4"]["kept"] <= 1
    cap = r["capacity"]["by_processes"]
    assert set(cap) == {"1", "2"}
    for row in cap.values():
        assert row["vpsweb_jobs_per_s"] > 0 and row["raw_canvas_per_s"] > 0
        # The raw canvas with requests made a real job's nine per canvas (+1 warm-up).
        assert row["raw_with_calls_requests"] == (row["jobs"] + 1) * 9
        assert row["raw_with_calls_per_s"] > 0
