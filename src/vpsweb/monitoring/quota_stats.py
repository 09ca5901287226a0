"""The providers' quotas as operators watch them: `vpsweb stats`'s "Provider quotas"
table and the quota families of Flower's /metrics.

The buckets are the config's: one per provider, and one per model that declares
``limits`` of its own ("provider/model"), as the workers' gate draws on them
(vpsweb.llm.quota_gate). Their figures (calls, waits, 429s, the adaptive allowance)
come from the store's ``quotas.state``; nothing here talks to Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vpsweb.config.schema import Limits, ModelsConfig
from vpsweb.domain.permits import QuotaState
from vpsweb.monitoring.usage import escape_label, number

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from vpsweb.storage import Storage


def buckets(models: ModelsConfig) -> dict[str, Limits | None]:
    """Every bucket of the config and its declared limits: each provider, followed by
    its models that declare limits of their own."""
    found: dict[str, Limits | None] = {}
    for provider, entry in models.providers.items():
        found[provider] = entry.limits
        for key, model in models.models.items():
            if model.provider == provider and model.limits is not None:
                found[f"{provider}/{key}"] = model.limits
    return found


def quota_states(storage: Storage, models: ModelsConfig) -> list[QuotaState] | None:
    """The buckets' figures now; None when the store keeps no quotas (in memory)."""
    if storage.quotas is None:
        return None
    return storage.quotas.state(list(buckets(models)))


def declared(limits: Limits | None) -> str:
    """E.g. "60 rpm, 100000 tpm, 8 concurrent"; "-" when none is declared."""
    if limits is None:
        return "-"
    parts = [
        f"{limits.requests_per_minute} rpm" if limits.requests_per_minute else "",
        f"{limits.tokens_per_minute} tpm" if limits.tokens_per_minute else "",
        f"{limits.max_concurrent} concurrent" if limits.max_concurrent else "",
    ]
    return ", ".join(p for p in parts if p) or "-"


# --- the CLI's table ---------------------------------------------------------------

COLUMNS: tuple[str, ...] = ("bucket", "limits", "calls", "waits", "wait s", "429s")
COLUMNS += ("allowance", "in flight", "queued")


def allowance(state: QuotaState) -> str:
    return "unlimited" if state.allowance is None else f"{state.allowance:.1f}"


def _cells(state: QuotaState, limits: Limits | None) -> list[str]:
    return [
        state.bucket,
        declared(limits),
        str(state.calls),
        str(state.waits),
        f"{state.wait_s:.1f}",
        str(state.throttled),
        allowance(state),
        str(state.in_flight),
        str(state.queued),
    ]


def quota_table(states: Sequence[QuotaState], models: ModelsConfig) -> str:
    """A fixed-width table, one row per bucket (counters since the store began)."""
    limits = buckets(models)
    rows = [list(COLUMNS), *(_cells(s, limits.get(s.bucket)) for s in states)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        # The bucket and its limits left-aligned, figures right-aligned.
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    head = line(rows[0])
    notes = [
        "waits: calls that waited for a permit; 429s: answers the provider throttled;",
        "allowance: concurrent calls the 429s allow now (unlimited: no 429 holds them back)",
    ]
    out = ["Provider quotas", "", head, "-" * len(head), *(line(r) for r in rows[1:])]
    return "\n".join([*out, "", *notes]) + "\n"


# --- Prometheus ----------------------------------------------------------------------

# Family -> (type, help, the state's figure). An unlimited allowance has no sample.
FAMILIES: dict[str, tuple[str, str, str]] = {
    "vpsweb_quota_calls_total": ("counter", "LLM calls that took a quota permit.", "calls"),
    "vpsweb_quota_waits_total": (
        "counter",
        "LLM calls that waited for a quota permit.",
        "waits",
    ),
    "vpsweb_quota_wait_seconds_total": (
        "counter",
        "Seconds LLM calls waited for quota permits.",
        "wait_s",
    ),
    "vpsweb_provider_throttled_total": (
        "counter",
        "Answers a provider throttled (HTTP 429).",
        "throttled",
    ),
    "vpsweb_quota_allowance": (
        "gauge",
        "Concurrent calls the adaptive allowance permits now (absent: unlimited).",
        "allowance",
    ),
    "vpsweb_quota_in_flight": ("gauge", "LLM calls holding a quota permit now.", "in_flight"),
    "vpsweb_quota_queued": ("gauge", "LLM calls waiting for a quota permit now.", "queued"),
}


def quota_prometheus(states: Sequence[QuotaState]) -> str:
    """The buckets' figures in Prometheus's text exposition format (0.0.4), every
    family with its HELP and TYPE lines; "" for no buckets."""
    if not states:
        return ""
    lines: list[str] = []
    for family, (kind, help_text, field) in FAMILIES.items():
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}"]
        for state in sorted(states, key=lambda s: s.bucket):
            value = getattr(state, field)
            if value is not None:
                label = escape_label(state.bucket)
                lines.append(f'{family}{{bucket="{label}"}} {number(float(value))}')
    return "\n".join(lines) + "\n"
