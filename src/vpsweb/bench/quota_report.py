"""`vpsweb bench quota`'s targets and table: each scenario's line, measured beside its
target (the run itself is in ``quota``; the command in ``run``)."""

from __future__ import annotations

from typing import Any

from vpsweb.bench.quota_monitor import ratio


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
            f"{ratio(t, a):.2%} ({t}/{a})",
            f"<= {max_429:.0%}",
            ratio(t, a) <= max_429,
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
