"""The `vpsweb` argument parser: one function per group of subcommands.

Building it imports nothing heavy and reads no config, so `vpsweb --help` works
even when the config or the environment is broken.
"""

from __future__ import annotations

import argparse
from typing import Any

from vpsweb import settings
from vpsweb.cli.batch_parser import add_batch_parser
from vpsweb.cli.commands import (
    cmd_bench,
    cmd_cancel,
    cmd_config_check,
    cmd_config_init,
    cmd_flower,
    cmd_jobs,
    cmd_result,
    cmd_simulate,
    cmd_status,
    cmd_watch,
    cmd_worker,
)
from vpsweb.cli.manual import add_manual_parser
from vpsweb.cli.request_options import add_cluster_options, add_request_options
from vpsweb.cli.stats import add_stats_parser
from vpsweb.cli.translate import cmd_translate
from vpsweb.cli.web import add_web_parser


def _add_redis(p: argparse.ArgumentParser, *, local: bool = True) -> None:
    where = ", else the local store of embedded runs" if local else "; required"
    p.add_argument(
        "--redis-url", help=f"the cluster's Redis (default: ${settings.REDIS_URL_ENV}{where})"
    )


def _add_manual_options(t: Any) -> None:
    """Manual mode: a person answers every prompt, or the chosen steps' prompts."""
    hand = t.add_mutually_exclusive_group()
    hand.add_argument(
        "--manual",
        action="store_true",
        help="answer every prompt yourself (paste it into any chat UI, paste the answer back)",
    )
    hand.add_argument(
        "--manual-steps",
        metavar="LIST",
        help="answer only these steps by hand, e.g. evaluation or candidate,editor_review",
    )


def _add_output_options(t: argparse.ArgumentParser) -> None:
    """What is printed and saved, or only estimated (--dry-run)."""
    t.add_argument(
        "--json",
        action="store_true",
        help="print the full result (with --dry-run: the estimate) as JSON (progress: stderr)",
    )
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print the estimated calls, tokens and cost per step (expected "
        "and worst case); submit nothing, start nothing",
    )
    t.add_argument("--output-dir", help="save JSON and Markdown files here")


def _add_translate(sub: Any) -> None:
    t = sub.add_parser("translate", help="translate a poem file and wait for the result")
    t.add_argument("file")
    add_request_options(t)
    # One poem's own key: `vpsweb batch` has none (a key shared by every poem would make
    # them one job); a manifest gives each poem its own.
    t.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="your own key for this submission: run again with the same key (after a "
        "timeout, a dropped connection) and you follow the job it made instead of paying "
        "for a second one",
    )
    _add_manual_options(t)
    _add_output_options(t)
    t.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up waiting after N s (default: the job's worst-case deadline)",
    )
    add_cluster_options(t)
    t.set_defaults(func=cmd_translate)


def _add_job_commands(sub: Any) -> None:
    for name, func, text in (
        ("status", cmd_status, "show a job's status and progress"),
        ("result", cmd_result, "wait for and print a job's result"),
        ("cancel", cmd_cancel, "cancel a job: no further LLM calls"),
        ("watch", cmd_watch, "follow a job's progress until it ends"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("job")
        _add_redis(p)
        if name in ("result", "watch"):
            p.add_argument("--timeout", type=float, default=None)
        if name == "result":
            p.add_argument("--json", action="store_true")
            p.add_argument("--output-dir")
        p.set_defaults(func=func)
    j = sub.add_parser("jobs", help="list recent jobs (or a batch's)")
    j.add_argument("--limit", type=int, default=20)
    j.add_argument("--batch", metavar="BATCH", help="the jobs of this batch, one per poem")
    _add_redis(j)
    j.set_defaults(func=cmd_jobs)


def _add_operations(sub: Any) -> None:
    w = sub.add_parser("worker", help="start a Celery worker (threads pool)")
    w.add_argument("--queues", help="comma-separated queues (default: all)")
    w.add_argument("--concurrency", type=int, help="threads (default 32)")
    w.add_argument("--loglevel", default="INFO")
    w.add_argument("--name", help="node name, e.g. candidates1@%%h (default celery@%%h)")
    _add_redis(w, local=False)
    w.set_defaults(func=cmd_worker)

    f = sub.add_parser(
        "flower",
        help="start Flower (basic auth from "
        f"{settings.FLOWER_USER_ENV}, {settings.FLOWER_PASSWORD_ENV})",
    )
    f.add_argument("--port", type=int, default=5555)
    f.add_argument("--address", help="bind address (default 0.0.0.0; 127.0.0.1 with --dev-no-auth)")
    f.add_argument(
        "--dev-no-auth",
        action="store_true",
        help="development only: run without credentials, bound to 127.0.0.1",
    )
    _add_redis(f, local=False)
    f.set_defaults(func=cmd_flower)

    b = sub.add_parser("bench", help="run the benchmarks (own Redis, simulator and workers)")
    from vpsweb.bench.profiles import add_arguments as add_bench_arguments

    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)

    s = sub.add_parser("simulate-llm", help="run the offline OpenAI-compatible LLM simulator")
    from vpsweb.simulator.options import add_arguments

    add_arguments(s)
    s.set_defaults(func=cmd_simulate)


def _add_config(sub: Any) -> None:
    c = sub.add_parser("config", help="configuration commands")
    csub = c.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="validate the config and print a summary")
    check.add_argument(
        "--config-dir", help=f"default: ${settings.CONFIG_DIR_ENV} or the packaged defaults"
    )
    check.add_argument(
        "--keys",
        action="store_true",
        help="also say, per provider the modes use, whether its API key variable is set "
        "here (never the key); exit 1 if one is missing",
    )
    check.set_defaults(func=cmd_config_check)
    init = csub.add_parser("init", help="write an editable copy of the default config")
    init.add_argument("directory")
    init.add_argument("--force", action="store_true", help="overwrite files in DIRECTORY")
    init.set_defaults(func=cmd_config_init)


def build_parser() -> argparse.ArgumentParser:
    from vpsweb import __version__

    parser = argparse.ArgumentParser(
        prog="vpsweb", description="Distributed poetry translation with LLMs."
    )
    parser.add_argument("--version", action="version", version=f"vpsweb {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_translate(sub)
    add_batch_parser(sub)
    _add_job_commands(sub)
    add_stats_parser(sub)
    add_manual_parser(sub)
    add_web_parser(sub)
    _add_operations(sub)
    _add_config(sub)
    return parser
