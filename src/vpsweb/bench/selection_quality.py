"""`vpsweb bench selection`: does the evaluation pick the best candidate, and at what cost?

Why: a real judge has no right answer to check it against. The offline simulator
has one: every translation it writes has a hidden quality (simulator/quality.py),
some candidates are planted defects that a naive judge likes (``--defect-rate``;
the simulator lists them at GET /truth), and its judge can be made to favour the
first-shown candidate with probability b (``--judge-first-bias``). So accuracy,
position bias and agreement can be measured, for one judge call (``single``,
evaluation.orders = 1) against several orders (``multi_order``, orders = 2).

How: one simulator per bias b (latency 0, fault rates 0), and for each judging
setting the same jobs: the same poems and job ids, hence the same candidates and
the same first presentation order, so the rows of one bias are paired. Jobs run
through the in-process runner's stages, stopping after the evaluation, on a thread
pool. The whole run is deterministic for its arguments.

Metrics per (bias, judging):
  top1_accuracy: share of jobs (with at least one honest candidate) whose selected
    candidate is the honest candidate of highest hidden quality;
  agreement: mean of evaluation.agreement over jobs that have one; null for single
    (one order cannot disagree with itself);
  first_position_win_rate: over every (job, order) that showed at least two
    candidates, the share whose first-shown candidate is the final choice (random
    position would give about 1/N);
  defects_selected: jobs whose selected candidate is a planted defect;
  eval_tokens_per_job: mean tokens of the evaluation step (all its calls).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from vpsweb import settings
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.models import CandidateResult, EvaluationResult
from vpsweb.domain.plan import build_plan
from vpsweb.domain.runner import run_stage
from vpsweb.errors import VpswebError
from vpsweb.llm.client import OpenAICompatibleClient
from vpsweb.local.processes import stop_process
from vpsweb.local.simulator_process import start_simulator_process
from vpsweb.simulator import quality
from vpsweb.stages.shared import Prior, StageContext
from vpsweb.stages.table import STAGES

JUDGINGS = {"single": 1, "multi_order": 2}  # evaluation.orders of each setting
EVALUATION = "evaluation"
_VOCABULARY = (
    "autumn river lantern pine crane bell snow willow moon ferry smoke orchard "
    "harvest dusk meadow frost heron mountain temple rain window letter swallow "
    "cicada bamboo tide stone courtyard thread wine mirror gate cloud"
)
_WORDS = _VOCABULARY.split()


@dataclass
class Outcome:
    """One job up to its evaluation, or why it stopped."""

    candidates: list[CandidateResult]
    evaluation: EvaluationResult | None
    error: str | None = None


def poem(j: int) -> tuple[str, str]:
    """(title, text) of job j's poem: 2-3 stanzas of 2-4 lines, so every job gets its
    own candidates and no defect passes for an honest short poem."""
    r = random.Random(f"selection-poem-{j}")
    stanzas = [
        [" ".join(r.choice(_WORDS) for _ in range(r.randint(3, 6))) for _ in range(r.randint(2, 4))]
        for _ in range(r.randint(2, 3))
    ]
    title = f"{r.choice(_WORDS).title()} {j}"
    return title, "\n\n".join("\n".join(lines) for lines in stanzas)


def with_orders(cfg: AppConfig, orders: int) -> AppConfig:
    """The config with evaluation.orders set (the judging setting of a row)."""
    pipeline = cfg.pipeline
    evaluation = pipeline.evaluation.model_copy(update={"orders": orders})
    return dataclasses.replace(cfg, pipeline=pipeline.model_copy(update={"evaluation": evaluation}))


def run_job(cfg: AppConfig, llm: OpenAICompatibleClient, j: int, n: int) -> Outcome:
    """Job j through the evaluation stage (the later stages do not change the choice)."""
    title, text = poem(j)
    request = {
        "poem": text,
        "source_lang": "en",
        "target_lang": "zh-CN",
        "title": title,
        "author": "Bench",
        "parallel_count": n,
    }
    plan = build_plan(request, cfg, job_id=f"selection{j:05d}", offline=True)
    ctx = StageContext(plan=plan, prompts=cfg.prompts, llm=llm, models=cfg.models)
    prior = Prior()
    try:
        for s in STAGES:
            prior.outputs[s.name] = run_stage(ctx, s, prior)
            if s.name == EVALUATION:
                break
    except VpswebError as exc:
        cands = prior.outputs.get(STAGES[0].name) or []
        return Outcome(cands, None, str(exc))
    return Outcome(prior.candidates(), prior.get(EVALUATION, EvaluationResult))


def _orders(ev: EvaluationResult) -> list[list[int]]:
    """The orders the judge saw and answered (the first order alone when K = 1 and the
    evaluation kept no judgements)."""
    return [j.order for j in ev.judgements if j.error is None] or [ev.presented_order]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def score(outcomes: Iterable[Outcome], defects: dict[str, str]) -> dict[str, Any]:
    """The row's metrics (see the module docstring) from the jobs and /truth."""
    total = scored = right = selected_defects = first_total = first_wins = failed = 0
    agreements: list[float] = []
    tokens: list[float] = []
    for o in outcomes:
        total += 1
        ev = o.evaluation
        if ev is None:
            failed += 1
            continue
        ok = {c.index: c for c in o.candidates if c.ok}
        honest = [c for c in ok.values() if quality.fingerprint(c.translation) not in defects]
        if honest:
            best = max(honest, key=lambda c: (quality.hidden_quality(c.translation), -c.index))
            scored += 1
            right += ev.selected_index == best.index
        chosen = ok.get(ev.selected_index)
        if chosen is not None and quality.fingerprint(chosen.translation) in defects:
            selected_defects += 1
        if ev.agreement is not None:
            agreements.append(ev.agreement)
        shown = [order for order in _orders(ev) if len(order) >= 2]
        first_total += len(shown)
        first_wins += sum(order[0] == ev.selected_index for order in shown)
        if ev.metrics is not None:
            tokens.append(ev.metrics.usage.total_tokens)
    return {
        "top1_accuracy": round(right / scored, 4) if scored else None,
        "agreement": _mean(agreements),
        "first_position_win_rate": round(first_wins / first_total, 4) if first_total else None,
        "defects_selected": selected_defects,
        "jobs": total,
        "jobs_scored": scored,  # with at least one honest candidate
        "jobs_failed": failed,
        "eval_tokens_per_job": _mean(tokens),
    }


def truth(url: str) -> dict[str, str]:
    """The planted defects the simulator delivered: fingerprint -> kind."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/truth", timeout=10) as resp:
        return dict(json.load(resp)["defects"])


def run_bias(
    cfg: AppConfig, bias: float, args: argparse.Namespace, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Every judging setting at one first-position bias, on a simulator of its own."""
    flags = ["--latency-ms", "0", "--seed", str(args.seed)]
    flags += ["--defect-rate", str(args.defect_rate), "--judge-first-bias", str(bias)]
    proc, url = start_simulator_process(extra_args=flags)
    llm = OpenAICompatibleClient(
        models=cfg.models, env={**os.environ, settings.SIMULATOR_URL_ENV: url}
    )
    try:
        outcomes: dict[str, list[Outcome]] = {}
        for judging in args.judgings:
            say(f"bias {bias:g}, {judging}: {args.jobs} jobs of N={args.parallel_count} ...")
            setting = with_orders(cfg, JUDGINGS[judging])
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                futures = [
                    pool.submit(run_job, setting, llm, j, args.parallel_count)
                    for j in range(args.jobs)
                ]
                outcomes[judging] = [f.result() for f in futures]
        defects = truth(url)
    finally:
        llm.close()
        stop_process(proc)
    return [
        {"bias": bias, "judging": judging, **score(found, defects), "defects_planted": len(defects)}
        for judging, found in outcomes.items()
    ]


def extra_tokens(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation tokens per job of multi_order over single, per bias."""
    by = {(r["bias"], r["judging"]): r["eval_tokens_per_job"] for r in rows}
    out = []
    for bias in dict.fromkeys(r["bias"] for r in rows):
        single, multi = by.get((bias, "single")), by.get((bias, "multi_order"))
        if single and multi:
            out.append(
                {"bias": bias, "extra": round(multi - single, 1), "ratio": round(multi / single, 3)}
            )
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = [
        f"Selection against the simulator's hidden quality ({s['jobs']} jobs of "
        f"N={s['parallel_count']} per row, defect rate {s['defect_rate']:g})",
        "  bias  judging      top1   agreement  first-pos  defects  eval tokens/job",
    ]
    for r in doc["results"]:
        lines.append(
            f"  {r['bias']:<5g} {r['judging']:<12} {_fmt(r['top1_accuracy'], '.3f'):<6} "
            f"{_fmt(r['agreement'], '.3f'):<10} {_fmt(r['first_position_win_rate'], '.3f'):<10} "
            f"{r['defects_selected']:<8} {_fmt(r['eval_tokens_per_job'], '.0f')}"
        )
    for e in doc["extra_eval_tokens_per_job"]:
        lines.append(
            f"  multi_order costs {e['extra']:+.0f} evaluation tokens per job at bias "
            f"{e['bias']:g} ({e['ratio']:.2f}x single)"
        )
    lines.append("  agreement: '-' for single (one order); first-pos: chance is about 1/N")
    return "\n".join(lines)


def _checked(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, if anything."""
    try:
        args.biases = [float(b) for b in str(args.biases).split(",") if b.strip()]
    except ValueError:
        return f"--biases must be numbers separated by commas, not {args.biases!r}"
    args.judgings = [j.strip() for j in str(args.judgings).split(",") if j.strip()]
    if unknown := [j for j in args.judgings if j not in JUDGINGS]:
        return f"--judgings: unknown {', '.join(unknown)}; choose from {', '.join(JUDGINGS)}"
    if not all(0 <= b <= 1 for b in args.biases) or not args.biases:
        return "--biases must be fractions between 0 and 1"
    if args.jobs < 1 or args.threads < 1 or args.parallel_count < 2:
        return "--jobs and --threads must be at least 1, --parallel-count at least 2"
    if not 0 <= args.defect_rate <= 1:
        return "--defect-rate must be between 0 and 1"
    return None


def run(args: argparse.Namespace) -> int:
    if problem := _checked(args):
        sys.stderr.write(f"vpsweb bench selection: {problem}\n")
        return 2
    cfg = load_config()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for bias in args.biases:
        rows += run_bias(cfg, bias, args, say)
    doc = {
        "results": rows,
        "extra_eval_tokens_per_job": extra_tokens(rows),
        "settings": {
            "jobs": args.jobs,
            "parallel_count": args.parallel_count,
            "defect_rate": args.defect_rate,
            "biases": args.biases,
            "judgings": {j: JUDGINGS[j] for j in args.judgings},
            "seed": args.seed,
        },
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(doc) if args.json else table(doc))
    return 0


def say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
