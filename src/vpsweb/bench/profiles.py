"""`vpsweb bench` options and profiles; light to import (the CLI parser loads it)."""

from __future__ import annotations

import argparse
import dataclasses

SCENARIOS = ("scaling", "overhead", "throughput", "memory", "cost", "longtail", "capacity")


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
    tail_ns: list[int]
    tail_jobs: int  # jobs per (policy, N) under long-tailed latency
    tail_at_once: int
    capacity_jobs: int  # jobs (and raw canvases) per worker count, instant answers


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
    tail_ns=[1, 3, 8],
    tail_jobs=9,
    tail_at_once=3,
    capacity_jobs=200,
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
    tail_ns=[1, 3, 8],
    tail_jobs=30,
    tail_at_once=5,
    capacity_jobs=500,
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
    tail_ns=[1, 4],
    tail_jobs=2,
    tail_at_once=2,
    capacity_jobs=5,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "mode",
        nargs="?",
        choices=["selection", "quota", "batches", "store"],
        help="selection: measure the evaluation's choices against the simulator's hidden "
        "quality (in-process, no Redis; see the options below) instead of the timing "
        "scenarios; quota: the providers' quota under load (declared and adaptive limits, "
        "an interactive job under a batch, the limiter's Redis round trips); batches: a 500-poem "
        "collection validated and enqueued, progress()'s round trips, following it; store: what "
        "one job costs the state store (commands, Redis CPU, bytes kept, commands per "
        "call-second)",
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions (about 7 minutes)")
    p.add_argument("--tiny", action="store_true", help="smoke run for tests (seconds)")
    p.add_argument("--latency-ms", type=float, default=1000.0, help="simulated LLM latency")
    p.add_argument("--jitter-pct", type=float, default=10.0, help="± jitter, percent of latency")
    p.add_argument(
        "--tail-sigma",
        type=float,
        default=0.8,
        help="σ of the lognormal latency in the long-tail scenario (median --latency-ms)",
    )
    p.add_argument("--redis-url", help="use this Redis instead of starting one")
    p.add_argument("--simulator-url", help="use this simulator instead of starting one")
    p.add_argument(
        "--output",
        default="bench/results",
        help="directory for the JSON results (default bench/results)",
    )
    p.add_argument("--only", help=f"comma-separated scenarios: {','.join(SCENARIOS)}")
    _add_selection_arguments(p)
    q = p.add_argument_group("vpsweb bench quota")
    q.add_argument(
        "--quota-latency-ms", type=float, default=300.0, help="simulated LLM latency (300)"
    )
    q.add_argument(
        "--quota-batch",
        type=int,
        help="jobs of the batch the interactive job runs under (default 200; --quick 60)",
    )


def _add_selection_arguments(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("vpsweb bench selection")
    s.add_argument("--jobs", type=int, default=200, help="jobs per (bias, judging) row")
    s.add_argument("--parallel-count", type=int, default=3, help="candidates per job")
    s.add_argument(
        "--defect-rate", type=float, default=0.15, help="share of candidates planted defective"
    )
    s.add_argument(
        "--biases",
        default="0,0.3,0.5",
        help="the judge's first-position biases, comma-separated (default 0,0.3,0.5)",
    )
    s.add_argument(
        "--judgings",
        default="single,multi_order",
        help="single (evaluation.orders 1), multi_order (orders 2); default both",
    )
    s.add_argument("--threads", type=int, default=16, help="jobs run at once")
    s.add_argument("--seed", type=int, default=0, help="the simulator's seed")
    s.add_argument("--json", action="store_true", help="print one JSON object instead")
