"""`vpsweb batch SOURCE`: a collection validated whole, submitted as one batch, followed
to its end, and written out (each poem's files, the anthology, the summary).

The command line's request options are every poem's defaults (a manifest's own
``defaults:`` and each entry's fields win over them). Nothing starts before the whole
source is valid: every bad entry is named with its place and nothing is enqueued. Like
`translate`, it runs on the configured cluster, else on an embedded one whose store
keeps the batch (so `vpsweb batch resume` and the same command again can carry on).
Re-running the same command pays nothing again for poems translated before with the
same settings (content addressing; ``--force`` translates them again).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpsweb import settings
from vpsweb.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    fail,
    prepare_output_dir,
    print_error,
    redis_url,
)

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.batches import BatchEntry
    from vpsweb.config import AppConfig
    from vpsweb.domain.plan import JobPlan

OUTPUT_SUFFIX = "-translated"


def batch_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """Every poem's defaults from the options, as `translate` reads them (None: not
    given, so a manifest's values and a directory's file-name titles stand)."""
    from vpsweb.cli.translate import request_fields

    fields = request_fields(args)
    fields.pop("poem", None)
    for name in ("title", "author"):
        fields[name] = fields.get(name) or None
    return fields


def source_name(source: Path) -> str:
    """What a batch from ``source`` is called by default: the folder's or the
    manifest's name (``poems`` for ``poems/`` and ``poems.yaml``)."""
    resolved = source.resolve()
    return resolved.name if resolved.is_dir() else resolved.stem


def output_dir(args: argparse.Namespace, source: Path) -> Path:
    """--output-dir, else a folder next to the source (``poems-translated``); never the
    source directory itself (its files are read as poems)."""
    from vpsweb.errors import InputFileError

    resolved = source.resolve()
    chosen = Path(args.output_dir) if args.output_dir else None
    if chosen is None:
        chosen = resolved.parent / f"{source_name(source)}{OUTPUT_SUFFIX}"
    if resolved.is_dir() and chosen.resolve() == resolved:
        raise InputFileError(
            f"--output-dir {chosen} is the source directory: its files would be read as "
            "poems by the next run; choose another (default: a folder next to it)"
        )
    return chosen


def _said_encodings(entries: list[BatchEntry], args: argparse.Namespace) -> None:
    """Poem files read in an encoding other than UTF-8 (detected), as `translate` says."""
    odd = [e for e in entries if e.encoding and e.encoding.lower() not in ("utf-8", "utf8")]
    if args.encoding or not odd:
        return
    shown = ", ".join(f"{e.where} as {e.encoding}" for e in odd[:5])
    more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
    sys.stderr.write(f"read {shown}{more} (detected)\n")


def _dry_run(entries: list[BatchEntry], cfg: AppConfig, args: argparse.Namespace) -> int:
    """Each poem's estimate and the batch's: nothing submitted, nothing started."""
    from rich.cells import cell_len

    from vpsweb.cli.batch_finish import print_json
    from vpsweb.client.batch_plans import estimate_entries
    from vpsweb.domain.batch import budget_problems
    from vpsweb.domain.estimate import money

    offline = True if args.offline else settings.offline()
    estimate = estimate_entries(entries, cfg, offline=offline, budget=args.budget)
    if args.json:
        poems = [
            {"name": e.name, "where": e.where}
            | job.model_dump(mode="json", include={"expected", "worst"})
            for e, job in zip(entries, estimate.jobs, strict=True)
        ]
        print_json({"poems": poems, "total": estimate.model_dump(mode="json", exclude={"jobs"})})
    else:
        width = max(cell_len(e.name) for e in entries)  # 李白 takes four columns
        for e, job in zip(entries, estimate.jobs, strict=True):
            x, pad = job.expected, " " * (width - cell_len(e.name))
            sys.stdout.write(
                f"  {e.name}{pad}  {x.calls:>3} calls  ~{x.tokens:>7,} tokens  "
                f"{money(x.cost):>12}  ({e.where})\n"
            )
        sys.stdout.write(estimate.text() + "\n")
        sys.stdout.write(
            "(poems translated before with the same settings are reused and cost nothing)\n"
        )
    if refused := budget_problems(estimate):
        return fail("a submission would be refused:\n  " + "\n  ".join(refused), EXIT_USAGE)
    return EXIT_OK


def _kinds(entries: list[BatchEntry], cfg: AppConfig, offline: bool) -> list[JobPlan]:
    """One plan per kind of job in the batch (mode and N): enough to know the API keys
    and whether the simulator is needed."""
    from vpsweb.client.core import plan_job

    kinds: dict[tuple[str, int | None], JobPlan] = {}
    for e in entries:
        key = (e.request.workflow_mode.value, e.request.parallel_count)
        if key not in kinds:
            kinds[key] = plan_job(e.request, cfg, offline=offline)
    return list(kinds.values())


def _refusal(
    args: argparse.Namespace, kinds: list[JobPlan], cfg: AppConfig, offline: bool
) -> str | None:
    """Why this run cannot start (before anything does): --detach with an embedded run,
    or API keys an embedded worker would lack."""
    from vpsweb.cli.cluster import missing_keys

    if redis_url(args):
        return None
    if args.detach:
        return (
            f"--detach needs a cluster ({settings.REDIS_URL_ENV} or --redis-url): an embedded "
            "run ends with the command"
        )
    missing = sorted({k for p in kinds for k in missing_keys(cfg, p)}) if not offline else []
    if missing:
        return f"no API key: set {', '.join(missing)} for the batch's models, or run with --offline"
    return None


def _submitted(batch: Any, offline: bool) -> str:
    count, reused = len(batch.record.entries), sum(m.reused for m in batch.record.entries)
    again = f", {reused} translated before (reused, not paid again)" if reused else ""
    return f"batch {batch.id} submitted: {count} poems{again}{', offline' if offline else ''}\n"


def _submit_and_follow(
    args: argparse.Namespace,
    entries: list[BatchEntry],
    cfg: AppConfig,
    url: str,
    *,
    offline: bool,
    directory: Path,
) -> int:
    from vpsweb.cli.batch_finish import follow_to_end
    from vpsweb.client.sync import Client

    with Client(redis_url=url, config=cfg) as client:
        batch = client.submit_batch(
            entries,
            name=args.name or source_name(Path(args.source)),
            budget=args.budget,
            force=args.force,
            offline=offline,
        )
        said = _submitted(batch, offline)
        if args.detach:
            sys.stderr.write(said)
            sys.stdout.write(batch.id + "\n")
            return EXIT_OK
        again = "the same command without --force" if args.force else "the same command again"
        kept = redis_url(args) or not args.ephemeral
        return follow_to_end(
            client, batch, args, directory=directory, again=again if kept else None, said=said
        )


def cmd_batch_run(args: argparse.Namespace) -> int:
    from vpsweb.batches import load_source
    from vpsweb.cli.cluster import cluster, needs_simulator
    from vpsweb.config import load_config

    cfg = load_config()
    source = Path(args.source)
    # The whole source, validated before anything starts: every bad entry is said.
    entries = load_source(
        source,
        batch_defaults(args),
        max_parallel_count=cfg.pipeline.parallel_count.max,
        encoding=args.encoding,
    )
    _said_encodings(entries, args)
    if args.dry_run:
        return _dry_run(entries, cfg, args)
    offline = True if args.offline else settings.offline()
    directory = output_dir(args, source)
    kinds = _kinds(entries, cfg, offline)
    if (refused := _refusal(args, kinds, cfg, offline)) is not None:
        return fail(refused)
    prepare_output_dir(directory)
    code: int | None = None
    try:
        with cluster(args, any(needs_simulator(cfg, p) for p in kinds)) as url:
            code = _submit_and_follow(args, entries, cfg, url, offline=offline, directory=directory)
    except KeyboardInterrupt:
        if code is None:
            raise
        # Ctrl-C while the embedded cluster stopped: the outcome was already said.
        print_error("interrupted while stopping the local cluster; the files above are kept")
        return EXIT_INTERRUPTED
    return code
