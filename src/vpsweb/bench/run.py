"""`vpsweb bench`: run the scenarios, print a table, write JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vpsweb.bench import capacity, quota, scenarios, tails
from vpsweb.bench.harness import Spread, bench_env
from vpsweb.bench.profiles import FULL, QUICK, SCENARIOS, TINY, Profile
from vpsweb.bench.quota_report import quota_checks, quota_table
from vpsweb.config import AppConfig, load_config


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
            f"  beyond the floor: {ov['beyond_floor_s'] * 1000:.1f} ms; raw canvas (Celery "
            f"alone) p50 {ov['raw_canvas_latency_s'].median * 1000:.1f} ms; target <= "
            f"{ov['target_s'] * 1000:.1f} ms: {'met' if ov['target_met'] else 'missed'}",
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
    lines += _tail_table(results.get("longtail")) + _capacity_table(results.get("capacity"))
    return "\n".join(lines)


def _capacity_table(cap: dict[str, Any] | None) -> list[str]:
    if not cap:
        return []
    lines = [f"Capacity, instant answers (N={cap['parallel_count']}, jobs/s)"]
    for count, row in cap["by_processes"].items():
        lines.append(
            f"  {count} proc: vpsweb {row['vpsweb_jobs_per_s']:.2f}, raw canvas "
            f"{row['raw_canvas_per_s']:.2f}, ratio {row['ratio_to_raw']:.1%}; raw canvas with "
            f"the requests {row['raw_with_calls_per_s']:.2f} "
            f"({row['raw_with_calls_to_raw']:.1%} of raw), vpsweb/that "
            f"{row['ratio_to_raw_with_calls']:.1%}; "
            f"submit_many({row['jobs']}) {row['submit_many_s']:.3f} s"
        )
    return lines


def _tail_table(lt: dict[str, Any] | None) -> list[str]:
    if not lt:
        return []
    lat = lt["latency"]
    lines = [
        f"Long-tailed latency (lognormal, median {lat['median_ms']:.0f} ms, σ {lat['sigma']}; "
        f"{lt['jobs']} jobs per row, {lt['at_once']} at once; default policy "
        f"{lt['default_policy']})",
        "  policy    N  makespan p50 [min–max]      p95      ratio/N=1  kept",
    ]
    for policy, rows in lt["by_policy"].items():
        for n, row in rows.items():
            m = row["makespan_s"]
            lines.append(
                f"  {policy:<9} {n:<2} {m.fmt():<27}{m.p95:<9.3f}{row['ratio_to_n1']:<11.3f}"
                f"{row['kept']:.0%}"
            )
    return lines


def _scenarios(
    env: Any, cfg: AppConfig, profile: Profile, only: set[str], latency_s: float, sigma: float
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    log_dir = Path(tempfile.mkdtemp(prefix="vpsweb-bench-"))
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
            env, cfg, results["scaling"], n=n, reps=profile.overhead_reps, log_dir=log_dir
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
    results |= _tail_and_capacity(env, cfg, profile, only, latency_s, sigma, log_dir)
    return results


def _tail_and_capacity(
    env: Any,
    cfg: AppConfig,
    profile: Profile,
    only: set[str],
    latency_s: float,
    sigma: float,
    log_dir: Path,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "longtail" in only:
        say("long-tailed latency ...")
        results["longtail"] = tails.long_tail(
            env,
            cfg,
            ns=profile.tail_ns,
            jobs=profile.tail_jobs,
            at_once=profile.tail_at_once,
            sigma=sigma,
            latency_ms=latency_s * 1000,
            log_dir=log_dir,
            say=say,
        )
    if "capacity" in only:
        say("capacity (instant answers) ...")
        results["capacity"] = capacity.capacity(
            env,
            cfg,
            procs=[1, 2],
            jobs=profile.capacity_jobs,
            concurrency=16,
            log_dir=log_dir,
            say=say,
        )
    return results


def say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _write(doc: dict[str, Any], output: str) -> Path:
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{doc['profile']}-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    return path


def run(args: argparse.Namespace) -> int:
    if getattr(args, "mode", None) == "selection":
        from vpsweb.bench import selection_quality

        return selection_quality.run(args)
    if getattr(args, "mode", None) == "quota":
        return run_quota(args)
    if getattr(args, "mode", None) == "batches":
        return run_batches(args)
    if getattr(args, "mode", None) == "store":
        return run_store(args)
    profile = TINY if args.tiny else QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    cfg = load_config()
    jitter_ms = args.latency_ms * args.jitter_pct / 100
    started = time.perf_counter()
    with bench_env(
        latency_ms=args.latency_ms,
        jitter_ms=jitter_ms,
        redis_url=args.redis_url,
        simulator_url=args.simulator_url,
    ) as env:
        results = _scenarios(env, cfg, profile, only, args.latency_ms / 1000, args.tail_sigma)
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
    print(f"results written to {_write(doc, args.output)}")
    return 0


def run_quota(args: argparse.Namespace) -> int:
    """`vpsweb bench quota`: the bench's Redis; each scenario starts its own simulator."""
    latency_ms = args.quota_latency_ms
    jitter_ms = latency_ms * args.jitter_pct / 100
    started = time.perf_counter()
    with bench_env(latency_ms=0, jitter_ms=0, redis_url=args.redis_url, simulator_url=None) as env:
        results = quota.quota_bench(
            env,
            quick=args.quick,
            batch=args.quota_batch,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            log_dir=Path(tempfile.mkdtemp(prefix="vpsweb-bench-quota-")),
            say=say,
        )
    results["setup"] |= {"latency_ms": latency_ms, "jitter_ms": jitter_ms}
    results["checks"] = quota_checks(results)
    print(quota_table(results))
    profile = "quota-quick" if args.quick else "quota-full"
    extra = {"latency_ms": latency_ms, "jitter_ms": jitter_ms}
    return _record(args, profile, results, started, extra)


def _record(
    args: argparse.Namespace,
    profile: str,
    results: dict[str, Any],
    started: float,
    extra: dict[str, Any] | None = None,
) -> int:
    """Say the wall time and write the results' JSON beside the other runs'."""
    elapsed = time.perf_counter() - started
    print(f"(bench wall time {elapsed:.0f} s)")
    doc = {
        "profile": profile,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
        "machine": _machine(),
        "wall_time_s": round(elapsed, 1),
        "command": " ".join(["vpsweb", "bench", *sys.argv[2:]]),
        "results": _plain(results),
    }
    print(f"results written to {_write(doc, args.output)}")
    return 0


def run_batches(args: argparse.Namespace) -> int:
    """`vpsweb bench batches`: the bench's Redis, no worker and no simulator needed."""
    from vpsweb.bench import collection

    started = time.perf_counter()
    with bench_env(latency_ms=0, jitter_ms=0, redis_url=args.redis_url, simulator_url=None) as env:
        results = collection.batch_bench(env, quick=args.quick, say=say)
    checks = collection.batch_checks(results)
    results["checks"] = [
        {"line": line, "measured": got, "target": want, "met": met}
        for line, got, want, met in checks
    ]
    print("Batches (no worker: the cost of sending and following a collection)")
    for line, got, want, met in checks:
        print(f"  {line:<44}{got:<52}{want:<12}{'met' if met else 'MISSED'}")
    return _record(args, "batches-quick" if args.quick else "batches", results, started)


def run_store(args: argparse.Namespace) -> int:
    """`vpsweb bench store`: the bench's Redis is the broker; the store gets its own."""
    from vpsweb.bench import store_cost

    started = time.perf_counter()
    with bench_env(latency_ms=0, jitter_ms=0, redis_url=args.redis_url, simulator_url=None) as env:
        results = store_cost.store_bench(
            env,
            quick=args.quick,
            log_dir=Path(tempfile.mkdtemp(prefix="vpsweb-bench-store-")),
            say=say,
        )
    print(store_cost.store_table(results))
    return _record(args, "store-quick" if args.quick else "store", results, started)
