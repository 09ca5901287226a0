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


# --- vpsweb bench quota: targets and table -----------------------------------------


def _check(line: str, measured: str, target: str, met: bool | None) -> dict[str, Any]:
    return {"line": line, "measured": measured, "target": target, "met": met}


def _batch_checks(tag: str, row: dict[str, Any], min_share: float, max_429: float) -> list[dict]:
    a, t = row["accepted"], row["throttled"]
    return [
        _check(
            f"{tag} throughput / bound",
            f"{row['share']:.1%} ({a} calls in {row['makespan_s']:.1f} s; "
            f"bound {row['bound_calls_per_s']:.2f}/s)",
            f">= {min_share:.0%}",
            row["share"] >= min_share,
        ),
        _check(
            f"{tag} 429s / accepted",
            f"{quota.ratio(t, a):.2%} ({t}/{a})",
            f"<= {max_429:.0%}",
            quota.ratio(t, a) <= max_429,
        ),
        _check(f"{tag} failed jobs", f"{row['failed']} of {row['jobs']}", "0", row["failed"] == 0),
        _check(
            f"{tag} paid once",
            f"accepted {a}, recorded {row['recorded_calls']}",
            "equal",
            row["paid_once"],
        ),
    ]


def quota_checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    c, d, a = r["interactive"], r["limiter_cost"]["redis"], r["declared_rpm"]["redis"]
    e = r["second_batch"]
    return [
        *_batch_checks("a) declared rpm:", r["declared_rpm"], 0.90, 0.01),
        *_batch_checks("b) undeclared conc.:", r["undeclared_concurrency"], 0.75, 0.10),
        _check(
            "c) interactive makespan / idle",
            f"{c['ratio']:.2f} ({c['loaded_makespan_s']:.2f} s / {c['idle_makespan_s']:.2f} s; "
            f"queue {c['queued_at_submit']} -> {c['queued_at_finish']})",
            "<= 1.5",
            c["ratio"] <= 1.5,
        ),
        _check("c) failed jobs", str(c["failed"]), "0", c["failed"] == 0),
        _check(
            "e) second batch's share of calls",
            f"{e['share']:.1%} ({e['own_calls']}/{e['calls_meanwhile']}; makespan "
            f"{e['ratio']:.2f}x alone)",
            ">= 40%",
            e["share"] >= 0.40,
        ),
        _check("d) quota round trips / call", _trips(d), "<= 1", d["per_call"]["round_trips"] <= 1),
        _check("d) ... while waiting (during a)", _trips(a), "-", None),
    ]


def _trips(m: dict[str, Any]) -> str:
    p = m["per_call"]
    return (
        f"{p['round_trips']:.2f} (acquire {p.get('acquire', 0):.2f}, settle alone "
        f"{p.get('settle_alone', 0):.2f}, nap {p.get('nap', 0):.2f}; "
        f"all commands {m['commands'] / max(1, m['calls']):.1f})"
    )


def quota_table(r: dict[str, Any]) -> str:
    s = r["setup"]
    lines = [
        f"Provider quota ({s['procs']} workers x {s['threads']} threads, N={s['parallel_count']}, "
        f"simulator {s['latency_ms']:g} ms ±{s['jitter_ms']:g})",
        f"  {'line':<40}{'measured':<68}{'target':<8}result",
    ]
    for c in r["checks"]:
        verdict = "-" if c["met"] is None else "met" if c["met"] else "MISSED"
        lines.append(f"  {c['line']:<40}{c['measured']:<68}{c['target']:<8}{verdict}")
    return "\n".join(lines)


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
    elapsed = time.perf_counter() - started
    print(quota_table(results))
    print(f"(bench wall time {elapsed:.0f} s)")
    doc = {
        "profile": "quota-quick" if args.quick else "quota-full",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "latency_ms": latency_ms,
        "jitter_ms": jitter_ms,
        "machine": _machine(),
        "wall_time_s": round(elapsed, 1),
        "command": " ".join(["vpsweb", "bench", *sys.argv[2:]]),
        "results": _plain(results),
    }
    print(f"results written to {_write(doc, args.output)}")
    return 0
