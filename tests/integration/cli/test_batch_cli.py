"""`vpsweb batch` as a user runs it, on a real cluster with the simulator: a 100-poem
collection from a directory and from each manifest format, bad manifests refused whole
with nothing enqueued, --dry-run, and the batch commands afterwards."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.helpers.batch_cli import FORMATS, write_collection
from tests.helpers.cli import our_processes, run_cli
from tests.helpers.stage_calls import calls_per_job
from vpsweb.client import Client
from vpsweb.config import load_config

pytestmark = pytest.mark.integration

LANGS = ("--source-lang", "en", "--target-lang", "zh-CN")
RUN = (*LANGS, "--offline", "--parallel-count", "1")


def _stored(url: str) -> tuple[int, int]:
    """How many batches and jobs the store holds."""
    with Client(redis_url=url, config=load_config()) as client:
        return len(client.batches(10_000)), len(client.recent(10_000))


def _bad_manifest(root: Path, kind: str) -> Path:
    """Five mistakes: an unknown column, a missing file, a bad language, a duplicate
    entry and a 10 MB cell, among good poems."""
    (root / "fog.txt").write_text("The fog comes\non little cat feet.\n", encoding="utf-8")
    big = "x" * 10_000_000
    rows = [
        {"file": "fog.txt", "colour": "grey"},
        {"file": "missing.txt"},
        {"text": "Un poème", "source_lang": "fr"},
        {"text": "The fog comes again\non little cat feet.\n"},
        {"text": "The fog comes again\non little cat feet.\n"},
        {"text": big},
    ]
    if kind == "csv":
        path = root / "bad.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["file", "text", "source_lang", "colour"])
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "jsonl":
        path = root / "bad.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    else:
        path = root / "bad.yaml"
        path.write_text(json.dumps({"poems": rows}), encoding="utf-8")  # JSON is YAML
    return path


@pytest.mark.parametrize("kind", ["csv", "jsonl", "yaml"])
def test_a_bad_manifest_is_refused_whole_every_entry_named_nothing_enqueued(
    tmp_path: Path, redis_server, kind: str
) -> None:
    source = _bad_manifest(tmp_path, kind)
    before, processes = _stored(redis_server.url), our_processes()
    res = run_cli("batch", str(source), *RUN, env={"VPSWEB_REDIS_URL": redis_server.url})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0] == "vpsweb: invalid request:"
    problems = lines[1:]
    for said in ("unknown", "missing.txt", "'fr'", "the same poem", "10,000,000"):
        assert sum(said in line for line in problems) == 1, (said, res.stderr)
    assert all(line.startswith(f"  {source.name} ") or str(source) in line for line in problems)
    assert _stored(redis_server.url) == before and our_processes() - processes == set()


def test_dry_run_prints_each_poem_and_the_total_and_enqueues_nothing(
    tmp_path: Path, redis_server
) -> None:
    source = write_collection(tmp_path, "directory", 3, "dry run")
    env = {"VPSWEB_REDIS_URL": redis_server.url}
    before = _stored(redis_server.url)
    res = run_cli("batch", str(source), *RUN, "--dry-run", env=env)
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line.startswith("  poem-")]
    assert len(rows) == 3 and all(re.search(r"\d+ calls\s+~\s*[\d,]+ tokens", r) for r in rows)
    assert "estimate: 3 poem(s)" in res.stdout and "worst case:" in res.stdout
    as_json = run_cli("batch", str(source), *RUN, "--dry-run", "--json", env=env)
    data = json.loads(as_json.stdout)
    assert [p["name"] for p in data["poems"]] == ["poem-001", "poem-002", "poem-003"]
    assert data["total"]["count"] == 3 and data["total"]["expected"]["calls"] > 0
    refused = run_cli("batch", str(source), *RUN, "--dry-run", "--budget", "0.000001", env=env)
    assert refused.returncode == 2 and "would be refused" in refused.stderr
    assert "budget" in refused.stderr
    assert _stored(redis_server.url) == before
    assert not (tmp_path / "directory-poems-translated").exists()


def _check_outputs(out: Path, count: int) -> None:
    assert len(list((out / "poems").glob("*.json"))) == count
    assert len(list((out / "poems").glob("*.md"))) == count
    anthology = (out / "anthology.md").read_text(encoding="utf-8")
    assert f"{count} poems from English into Simplified Chinese: {count} translated." in anthology
    rows = list(csv.DictReader((out / "summary.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == count and {r["status"] for r in rows} == {"succeeded"}
    assert len((out / "summary.jsonl").read_text(encoding="utf-8").splitlines()) == count
    assert "<html" in (out / "anthology.html").read_text(encoding="utf-8")


def _batch_id(stderr: str) -> str:
    found = re.search(r"batch ([0-9a-f]{12}) submitted", stderr)
    assert found, stderr
    return found.group(1)


@pytest.mark.parametrize("kind", FORMATS)
def test_a_100_poem_batch_from_each_kind_of_source(
    tmp_path: Path, redis_server, workers, sim_stats, kind: str
) -> None:
    source = write_collection(tmp_path, kind, 100, "hundred")
    out = tmp_path / "out"
    env = {"VPSWEB_REDIS_URL": redis_server.url}
    calls = sim_stats()["total_requests"]
    res = run_cli("batch", str(source), *RUN, "--output-dir", str(out), env=env, timeout=170)
    assert res.returncode == 0, res.stderr[-3000:]
    # In a pipe: plain lines, one per poem that ended, none redrawn.
    ends = [line for line in res.stderr.splitlines() if re.match(r"\[\s*\d+/100\] ", line)]
    assert len(ends) == 100 and all("✓ poem-" in line for line in ends), res.stderr[-2000:]
    assert [int(re.match(r"\[\s*(\d+)", line).group(1)) for line in ends] == list(range(1, 101))
    assert "\x1b[" not in res.stderr
    assert "100 poems: 100 succeeded, 0 failed, 0 cancelled" in res.stdout
    assert sim_stats()["total_requests"] - calls == 100 * calls_per_job(1)
    _check_outputs(out, 100)


def test_the_batch_commands_after_a_run(tmp_path: Path, redis_server, workers) -> None:
    source = write_collection(tmp_path, "csv", 4, "commands")
    env = {"VPSWEB_REDIS_URL": redis_server.url}
    run = run_cli("batch", str(source), *RUN, "--json", "--name", "Fogs", env=env)
    assert run.returncode == 0, run.stderr
    objs = [json.loads(line) for line in run.stdout.splitlines()]
    assert [o["event"] for o in objs].count("job_succeeded") == 4
    assert objs[-1]["event"] == "batch_finished" and objs[-1]["counts"]["succeeded"] == 4
    batch = objs[-1]["batch_id"]
    assert Path(objs[-1]["files"][-1]).parent == tmp_path / "poems-translated"

    status = run_cli("batch", "status", batch, env=env)
    assert status.returncode == 0 and f"batch {batch} (Fogs)" in status.stdout
    assert "4/4 finished" in status.stdout and "100.0%" in status.stdout
    assert json.loads(run_cli("batch", "status", batch, "--json", env=env).stdout)["progress"]
    jobs = run_cli("jobs", "--batch", batch, env=env).stdout.splitlines()
    assert len(jobs) == 4 and all(re.search(r"succeeded .* poem-00\d$", j) for j in jobs)
    assert batch in run_cli("batch", "list", env=env).stdout
    watch = run_cli("batch", "watch", batch, env=env)
    assert watch.returncode == 0 and "4 poems: 4 succeeded" in watch.stdout
    cancel = run_cli("batch", "cancel", batch, env=env)
    assert cancel.returncode == 0 and "no unfinished poem (4 succeeded)" in cancel.stdout

    again = tmp_path / "again"
    results = run_cli("batch", "results", batch, "--output-dir", str(again), env=env)
    assert results.returncode == 0, results.stderr
    _check_outputs(again, 4)
    assert "# Fogs" in (again / "anthology.md").read_text(encoding="utf-8")

    missing = run_cli("batch", "status", "feedfacecafe", env=env)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_detach_prints_the_id_and_watch_follows_it(tmp_path: Path, redis_server, workers) -> None:
    source = write_collection(tmp_path, "yaml", 3, "detached")
    env = {"VPSWEB_REDIS_URL": redis_server.url}
    detached = run_cli("batch", str(source), *RUN, "--detach", env=env)
    assert detached.returncode == 0, detached.stderr
    batch = detached.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{12}", batch) and f"batch {batch} submitted" in detached.stderr
    watch = run_cli("batch", "watch", batch, env=env)
    assert watch.returncode == 0, watch.stderr
    assert len(re.findall(r"^\[\d/3\] ✓ poem-00\d succeeded$", watch.stdout, re.M)) == 3
    assert "3 poems: 3 succeeded" in watch.stdout
    assert not (tmp_path / "poems-translated" / "anthology.md").exists()  # watch writes none
