"""The option groups a request is made of, shared by `vpsweb translate` (one poem) and
`vpsweb batch` (their defaults for every poem of a collection).

Declared once so that the two commands cannot drift apart: a request field gets its
option here and both commands have it (tests/unit/client checks `translate`'s options
against ``TranslationRequest`` field by field). The only difference is that a batch's
languages may come from its manifest instead, so they are optional there.
"""

from __future__ import annotations

import argparse
from typing import Any

from vpsweb import settings


def add_spending_options(t: Any) -> None:
    """Quota priority and the job's budget."""
    t.add_argument(
        "--priority",
        choices=["interactive", "batch"],
        help="who waits first when a provider's quota is short (default: interactive; "
        "batch for `vpsweb batch`)",
    )
    t.add_argument(
        "--max-cost",
        type=float,
        metavar="AMOUNT",
        help="the most a job may spend, in its models' currency: refused if the estimate "
        "is above it, stopped when the spend reaches it",
    )


def add_dial_options(t: argparse.ArgumentParser) -> None:
    dials = t.add_argument_group("strategy dials (default: strategy_defaults in pipeline.yaml)")
    dials.add_argument("--adaptation-level", choices=["foreignizing", "balanced", "domesticating"])
    dials.add_argument("--repetition-policy", choices=["strict", "adaptive"])
    dials.add_argument("--additions-policy", choices=["forbid", "allow_with_alt"])
    dials.add_argument("--prosody-target", help="free text, e.g. 'rhymed quatrains'")
    dials.add_argument("--few-shots", metavar="FILE", help="example translations to imitate")
    dials.add_argument("--background", metavar="FILE", help="background briefing on the poem")


def add_glossary_options(t: argparse.ArgumentParser) -> None:
    """Required translations of names and terms (a batch shares them)."""
    from vpsweb.domain.glossary import GLOSSARY_MODES

    g = t.add_argument_group("glossary")
    g.add_argument(
        "--glossary",
        metavar="FILE",
        help="required translations of names and terms: YAML (source: target, or a list "
        "of {source, target, note}) or CSV (source,target[,note])",
    )
    g.add_argument(
        "--glossary-mode",
        choices=GLOSSARY_MODES,
        help="flag: a translation that misses a term is judged and flagged (default); "
        "strict: such a candidate is kept from the judge",
    )


def add_request_options(t: argparse.ArgumentParser, *, batch: bool = False) -> None:
    """What to translate and how: languages, N, straggler policy, mode, title and author,
    priority and max cost, the dials, the glossary, offline, encoding. ``batch``: the languages may
    be left to the manifest, and the mode too (a manifest's own default wins anyway)."""
    from vpsweb.domain.models import WorkflowMode

    t.add_argument("--source-lang", required=not batch, help="en, zh-CN or pl")
    t.add_argument("--target-lang", required=not batch, help="en or zh-CN")
    t.add_argument("--parallel-count", type=int, help="number of candidates (default: config)")
    t.add_argument(
        "--straggler",
        metavar="POLICY",
        help="when evaluation stops waiting for slow candidates: wait_all, or "
        "quorum[:FRACTION[:GRACE]] (e.g. quorum:0.5:0.2; default: the mode's, config)",
    )
    modes = [m.value for m in WorkflowMode]
    t.add_argument(
        "--mode",
        default=None if batch else WorkflowMode.HYBRID.value,
        choices=modes,
        help=f"workflow mode (default: {WorkflowMode.HYBRID.value})",
    )
    title = "every poem's title (a directory's poems go by their file names)" if batch else ""
    t.add_argument("--title", help=title or "the poem's title")
    t.add_argument("--author", help="the poet")
    add_spending_options(t)
    add_dial_options(t)
    add_glossary_options(t)
    t.add_argument(
        "--offline", action="store_true", help="use the offline LLM simulator for every step"
    )
    t.add_argument(
        "--encoding",
        help="of the poem and other files (default: UTF-8, else detected, e.g. gb18030, big5)",
    )


def add_cluster_options(t: argparse.ArgumentParser) -> None:
    """Which cluster runs the work: the configured one, else an embedded one."""
    t.add_argument(
        "--ephemeral",
        action="store_true",
        help="embedded run only: do not keep the jobs in the local store afterwards",
    )
    t.add_argument(
        "--redis-url",
        help=f"the cluster's Redis (default: ${settings.REDIS_URL_ENV}, else an embedded run)",
    )
