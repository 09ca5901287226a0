"""The `vpsweb batch` command line: ``batch SOURCE [options]`` and ``batch COMMAND BATCH``.

Both forms share one word, so the words of the batch commands (``run``, ``status``,
``watch``, ``results``, ``cancel``, ``resume``, ``list``) are reserved after ``batch``:
``vpsweb batch SOURCE`` is short for ``vpsweb batch run SOURCE`` whenever SOURCE is not
one of them, and a directory or manifest named like one is given as ``./status`` (or
with ``batch run``). ``implied_run`` inserts the ``run``; argparse does the rest.
"""

from __future__ import annotations

import argparse
from typing import Any

from vpsweb import settings
from vpsweb.cli import batch_commands
from vpsweb.cli.batch_run import cmd_batch_run
from vpsweb.cli.request_options import add_cluster_options, add_request_options

RUN = "run"
COMMANDS = (RUN, "status", "watch", "results", "cancel", "resume", "list")
DESCRIPTION = """\
Translate a collection as one batch, and follow, cancel, resume or write out batches.

  vpsweb batch SOURCE [options]     short for `vpsweb batch run SOURCE [options]`
  vpsweb batch status BATCH         (and watch, results, cancel, resume, list)

SOURCE is a directory of poem files (*.txt, *.text, *.md or no extension) or a manifest
(.yaml/.yml, .jsonl/.ndjson or .csv) naming each poem's file or text and any request
field. The command words are reserved: a source named like one is written ./status or
given after `batch run`.
"""


def implied_run(argv: list[str]) -> list[str]:
    """``argv`` with ``run`` inserted after ``batch`` when what follows is not a batch
    command (nor -h/--help): ``batch poems/ --source-lang zh-CN`` is ``batch run ...``."""
    for i, word in enumerate(argv):
        if word.startswith("-"):
            continue  # vpsweb's own flags (--debug) come before the command
        if word != "batch" or i + 1 >= len(argv):
            return argv
        following = argv[i + 1]
        if following in COMMANDS or following in ("-h", "--help"):
            return argv
        return [*argv[: i + 1], RUN, *argv[i + 1 :]]
    return argv


def _redis(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        help=f"the cluster's Redis (default: ${settings.REDIS_URL_ENV}, else the local store "
        "of embedded runs)",
    )


def _run_options(p: argparse.ArgumentParser, *, resume: bool = False) -> None:
    p.add_argument(
        "--budget",
        type=float,
        metavar="AMOUNT",
        help="the most the whole batch may spend, in its models' currency: refused up front "
        "if the estimate of its new jobs is above it, stopped when the spend reaches it "
        "(finished poems kept)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="translate again poems already translated with the same settings (default: "
        "reuse them, paying nothing again)",
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write each poem's JSON and Markdown, anthology.md/.html and summary.csv/.jsonl "
        + (
            "here when the batch ends (default: none; `batch results` writes them any time)"
            if resume
            else "here (default: a folder next to SOURCE, e.g. poems-translated/)"
        ),
    )
    if not resume:
        p.add_argument(
            "--name", help="the batch's name and the anthology's title (default: SOURCE's)"
        )


def _follow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line on stdout: each poem's start and end, progress every "
        "few seconds, the summary (with --dry-run: the estimate)",
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="print the batch id and return (a cluster only); follow it with `batch watch`",
    )
    p.add_argument("--timeout", type=float, help="stop following after N s (the batch goes on)")


def _add_run(bsub: Any) -> None:
    r = bsub.add_parser(
        RUN,
        help="translate SOURCE as one batch (the default: `vpsweb batch SOURCE`)",
        description="Translate every poem of SOURCE as one batch. The request options are "
        "every poem's defaults; a manifest's `defaults:` and its entries' fields win. "
        "Ctrl-C cancels the poems not finished, keeps and writes the finished ones; "
        "`vpsweb batch resume BATCH` or the same command again carries on, paying only "
        "for the rest.",
    )
    r.add_argument("source", metavar="SOURCE", help="a directory of poem files or a manifest")
    add_request_options(r, batch=True)
    _run_options(r)
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print each poem's and the batch's estimated calls, tokens and "
        "cost; enqueue nothing, start nothing",
    )
    _follow_options(r)
    add_cluster_options(r)
    # translate's own options that a batch gives per poem (a manifest) or not at all.
    r.set_defaults(file=None, idempotency_key=None, func=cmd_batch_run)


def _add_commands(bsub: Any) -> None:
    texts = {
        "status": "a batch's counts, cost, ETA and failures",
        "watch": "follow a batch until it ends (the live display)",
        "results": "write a batch's files again: each poem's, the anthology, the summary",
        "cancel": "cancel a batch's unfinished poems (no further LLM calls; finished kept)",
        "resume": "give a batch's failed and cancelled poems new jobs and follow it",
    }
    for name, text in texts.items():
        p = bsub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("batch", metavar="BATCH", help="the batch id")
        _redis(p)
        if name in ("status", "watch"):
            p.add_argument("--json", action="store_true", help="as JSON (watch: one per line)")
        if name == "watch":
            p.add_argument("--timeout", type=float, help="stop watching after N s")
        if name == "results":
            p.add_argument("--output-dir", metavar="DIR", required=True)
        if name == "resume":
            _run_options(p, resume=True)
            _follow_options(p)
            p.set_defaults(ephemeral=False)
        p.set_defaults(func=getattr(batch_commands, f"cmd_batch_{name}"))
    p = bsub.add_parser("list", help="the newest batches")
    p.add_argument("--limit", type=int, default=20)
    _redis(p)
    p.set_defaults(func=batch_commands.cmd_batch_list)


def add_batch_parser(sub: Any) -> None:
    b = sub.add_parser(
        "batch",
        help="translate a collection (a directory or a manifest) as one batch; "
        "batch status|watch|results|cancel|resume|list BATCH",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bsub = b.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")
    _add_run(bsub)
    _add_commands(bsub)
