"""`vpsweb stats`: usage of the jobs that ended recently, per mode and parallel_count,
then the providers' quotas (calls, waits, 429s, the adaptive allowance) when the
store keeps them.

Reads the summaries the workers (and cancelling clients) recorded as jobs ended;
like every job command it needs only the state store (and the config, for the
quotas' buckets and their declared limits).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from vpsweb import settings
from vpsweb.cli.common import EXIT_OK, fail, open_client

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from vpsweb.client.sync import Client
    from vpsweb.domain.permits import QuotaState

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_since(text: str) -> float | None:
    """Seconds in ``30m``, ``24h``, ``7d`` (or ``90s``); None if it is not one."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None or float(found.group(1)) <= 0:
        return None
    return float(found.group(1)) * _UNITS[found.group(2)]


def add_stats_parser(sub: Any) -> None:
    p = sub.add_parser(
        "stats",
        help="usage of recent jobs: tokens, cost, failures, durations per mode and N; "
        "the providers' quotas",
    )
    p.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d (default 24h)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--redis-url",
        help=f"the cluster's Redis (default: ${settings.REDIS_URL_ENV}, else the local store)",
    )
    p.set_defaults(func=cmd_stats)


def _quotas(client: Client) -> tuple[list[QuotaState] | None, str]:
    """The quota buckets' figures and their table; (None, "") when the store keeps no
    quotas (an in-memory store)."""
    from vpsweb.monitoring.quota_stats import quota_states, quota_table

    models = client.config.models
    states = quota_states(client.storage, models)
    return states, ("" if states is None else quota_table(states, models))


def cmd_stats(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from vpsweb.monitoring.usage import JobSummary
    from vpsweb.monitoring.usage_stats import aggregate, table

    window = parse_since(args.since)
    if window is None:
        return fail(f"--since {args.since!r}: give a duration such as 30m, 24h or 7d")
    until = time.time()
    with open_client(args) as client:
        raw = client.storage.usage.summaries(until - window)
        quotas, quota_text = _quotas(client)
    summaries, unreadable = [], 0
    for text in raw:
        try:
            summaries.append(JobSummary.model_validate_json(text))
        except ValidationError:
            unreadable += 1  # written by another vpsweb version: counted, not fatal
    stats = aggregate(summaries, until - window, until)
    if args.json:
        found = stats.model_dump(mode="json")
        if quotas is not None:
            found["quotas"] = [dataclasses.asdict(q) for q in quotas]
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
    else:
        sys.stdout.write(table(stats) + (f"\n{quota_text}" if quota_text else ""))
    if unreadable:
        sys.stderr.write(f"vpsweb: {unreadable} job summaries could not be read; left out\n")
    return EXIT_OK
