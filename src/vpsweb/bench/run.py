"""`vpsweb bench`: run the scenarios, print a table, write JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vpsweb.bench import scenarios
from vpsweb.bench.harness import Spread, bench_env
from vpsweb.config import load_config


@dataclasses.dataclass(frozen=True)
class Profile:
    ns: list[int]
    reps: int
    sequential_ns: list[int]
    overhead_reps: int
    throughput_jobs: int
    throughput_procs: list[int]
    throughput_concurrency: int
    memory_in_flight: int
    cost_ns: list[int]


# Quick: three sizes instead of five, fewer jobs; still medians of three runs.
QUICK = Profile(
    ns=[1, 3, 8],
    reps=3,
    sequential_ns=[8],
    overhead_reps=3,
    throughput_jobs=30,
    throughput_procs=[1, 2, 4],
    throughput_concurrency=8,
    memory_in_flight=64,
    cost_ns=[1, 3, 5],
)
FULL = Profile(
    ns=[1, 2, 3, 5, 8],
    reps=7,
    sequential_ns=[1, 2, 3, 5, 8],
    overhead_reps=7,
    throughput_jobs=200,
    throughput_procs=[1, 2, 4],
    throughput_concurrency=8,
    memory_in_flight=64,
    cost_ns=[1, 3, 5],
)
TINY = Profile(
    ns=[1, 2],
    reps=1,
    sequential_ns=[1],
    overhead_reps=1,
    throughput_jobs=3,
    throughput_procs=[1],
    throughput_concurrency=4,
    memory_in_flight=8,
    cost_ns=[1],
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer repetitions (< 3 minutes)")
    p.add_argument("--tiny", action="store_true", help="smoke run for tests (seconds)")
    p.add_argument("--latency-ms", type=float, default=1000.0, help="simulated LLM latency")
    p.add_argument("--jitter-pct", type=float, default=10.0, help="± jitter, percent of latency")
    p.add_argument("--redis-url", help="use this Redis instead of starting one")
    p.add_argument("--simulator-url", help="use this simulator instead of starting one")
    p.add_argument(
        "--output",
        default="bench/results",
        help="directory for the JSON results (default bench/results)",
    )
    p.add_argument(
        "--only", help="comma-separated scenarios: scaling,overhead,throughput,memory,cost"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Spread):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def table(results: dict[str, Any]) -> str:
    lines = []
    sc = results.get("scaling")
    if sc:
        lines += [
            "Parallel scaling (makespan median [min–max])",
            "  N  makespan              ratio/N=1  critical path   vs sequential",
        ]
        for n, row in sc["by_n"].items():
            seq = row["speedup_vs_sequential"]
            lines.append(
                f"  {n:<2} {row['makespan_s'].fmt():<22}{row['ratio_to_n1']:<11.3f}"
                f"{row['critical_path_s'].fmt():<16}"
                f"{f'{seq:.2f}x' if seq else '-'}"
            )
        lines.append("  Overhead per hop (ms, median [min–max], p95):")
        for hop, s in sc["hop_gaps"].items():
            lines.append(f"    {hop:<24} {s.fmt('ms', 1000, 1)}  p95 {s.p95 * 1000:.1f}ms")
    ov = results.get("overhead")
    if ov:
        d, f = ov["distributed_overhead_s"], ov["inprocess_overhead_s"]
        lines += [
            f"Orchestration overhead per job, N={ov['n']} (makespan - critical path)",
            f"  distributed : p50 {d.median * 1000:.1f} ms, p95 {d.p95 * 1000:.1f} ms",
            f"  in-process  : p50 {f.median * 1000:.1f} ms, p95 {f.p95 * 1000:.1f} ms",
            f"  makespan ratio distributed / in-process: {ov['makespan_ratio']:.4f}",
        ]
    tp = results.get("throughput")
    if tp:
        lines.append(
            f"Throughput (N={tp['parallel_count']}, "
            f"{tp['concurrency_per_process']} threads per process)"
        )
        for count, row in tp["by_processes"].items():
            lines.append(
                f"  {count} proc: {row['jobs_per_min']:.1f} jobs/min, bound "
                f"{row['bound_jobs_per_min']:.1f}, ratio {row['ratio_to_bound']:.1%}"
            )
    mem = results.get("memory")
    if mem:
        lines.append(
            f"Worker memory: {mem['peak_rss_mb']} MB peak with {mem['in_flight_seen']}"
            f" calls in flight (idle {mem['idle_rss_mb']} MB)"
        )
    cost = results.get("cost")
    if cost:
        lines.append("Tokens per job (x multiplier) and cost")
        for mode, rows in cost.items():
            parts = [
                f"N={n}: {r['tokens']} (x{r['token_multiplier']}) "
                + ", ".join(f"{v:.5f} {c}" for c, v in r["cost"].items())
                for n, r in rows.items()
            ]
            lines.append(f"  {mode:<13} " + "; ".join(parts))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    profile = TINY if args.tiny else QUICK if args.quick else FULL
    only = (
        set(args.only.split(","))
        if args.only
        else {"scaling", "overhead", "throughput", "memory", "cost"}
    )
    cfg = load_config()
    latency_s = args.latency_ms / 1000
    jitter_ms = args.latency_ms * args.jitter_pct / 100

    def say(msg: str) -> None:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    results: dict[str, Any] = {}
    started = time.perf_counter()
    log_dir = Path(tempfile.mkdtemp(prefix="vpsweb-bench-"))
    with bench_env(
        latency_ms=args.latency_ms,
        jitter_ms=jitter_ms,
        redis_url=args.redis_url,
        simulator_url=args.simulator_url,
    ) as env:
        if "scaling" in only or "overhead" in only:
            say("parallel scaling ...")
            results["scaling"] = scenarios.parallel_scaling(
                env,
                cfg,
                ns=profile.ns,
                reps=profile.reps,
                sequential_ns=profile.sequential_ns,
                log_dir=log_dir,
                say=say,
            )
        if "overhead" in only:
            say("in-process floor ...")
            n = 3 if 3 in profile.ns else profile.ns[-1]
            results["overhead"] = scenarios.overhead_vs_inprocess(
                env, cfg, results["scaling"], n=n, reps=profile.overhead_reps
            )
        if "throughput" in only:
            say("throughput ...")
            results["throughput"] = scenarios.throughput(
                env,
                cfg,
                procs=profile.throughput_procs,
                jobs=profile.throughput_jobs,
                concurrency=profile.throughput_concurrency,
                latency_s=latency_s,
                log_dir=log_dir,
                say=say,
            )
        if "memory" in only:
            say("memory ...")
            results["memory"] = scenarios.memory_in_flight(
                env, cfg, in_flight=profile.memory_in_flight, log_dir=log_dir
            )
        if "cost" in only:
            say("cost ...")
            results["cost"] = scenarios.cost_per_job(env, cfg, ns=profile.cost_ns, log_dir=log_dir)
    elapsed = time.perf_counter() - started
    print(table(results))
    print(f"(bench wall time {elapsed:.0f} s)")
    doc = {
        "profile": "tiny" if args.tiny else "quick" if args.quick else "full",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "latency_ms": args.latency_ms,
        "jitter_ms": jitter_ms,
        "machine": _machine(),
        "wall_time_s": round(elapsed, 1),
        "command": " ".join(["vpsweb", "bench", *sys.argv[2:]]),
        "results": _plain(results),
    }
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{doc['profile']}-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    print(f"results written to {path}")
    return 0
