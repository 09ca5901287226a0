"""`vpsweb translate`: validate, submit, follow, and keep the result whatever happens.

Without a cluster it runs one of its own (embedded Redis, worker, simulator when
needed) whose Redis keeps its data in the per-user store, so the job can be looked
at later; ``--ephemeral`` throws it away. The result is saved and printed the moment
the job ends, before the embedded cluster is torn down.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from vpsweb import settings
from vpsweb.cli.cluster import cluster, missing_keys, needs_simulator
from vpsweb.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    fail,
    interrupt_deferred,
    prepare_output_dir,
    print_error,
    redis_url,
    show_output,
)
from vpsweb.errors import JobError

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.config import AppConfig
    from vpsweb.domain.plan import JobPlan

TIMEOUT_MARGIN_S = 60.0


def _read(path: str | None, args: argparse.Namespace) -> str | None:
    from vpsweb.files.poems import read_text

    if not path:
        return None
    text, encoding = read_text(path, encoding=args.encoding, language=args.source_lang)
    if encoding.lower() not in ("utf-8", "utf8") and not args.encoding:
        sys.stderr.write(f"read {path} as {encoding} (detected)\n")
    return text


def request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The request the options give (`vpsweb batch` takes them as every poem's defaults,
    with no ``file``: no poem)."""
    return {
        "poem": _read(args.file, args),
        "source_lang": args.source_lang,
        "target_lang": args.target_lang,
        "parallel_count": args.parallel_count,
        "workflow_mode": args.mode,
        "title": args.title or "",
        "author": args.author or "",
        "strategy": {
            "adaptation_level": args.adaptation_level,
            "repetition_policy": args.repetition_policy,
            "additions_policy": args.additions_policy,
            "prosody_target": args.prosody_target,
            "few_shots": _read(args.few_shots, args),
        },
        "background_briefing": _read(args.background, args),
        "priority": args.priority,
        "max_cost": args.max_cost,
        "idempotency_key": args.idempotency_key,
        "glossary": _glossary(args),
    } | ({"straggler": _straggler(args.straggler)} if args.straggler else {})


_request = request_fields  # its name before `vpsweb batch` shared it


def _glossary(args: argparse.Namespace) -> dict[str, Any] | None:
    """The --glossary file, read like the poem (its encoding), with --glossary-mode."""
    from vpsweb.errors import RequestInvalid
    from vpsweb.files.glossary_file import read_glossary

    if not args.glossary:
        if args.glossary_mode:
            raise RequestInvalid(["--glossary-mode needs --glossary FILE"])
        return None
    found = read_glossary(
        args.glossary,
        mode=args.glossary_mode or "flag",
        encoding=args.encoding,
        languages=(args.source_lang, args.target_lang),
    )
    return found.model_dump()


def _straggler(text: str) -> dict[str, Any] | None:
    from vpsweb.client.core import straggler_of

    return straggler_of(text, name="--straggler")


def _follow(job: Any, plan: JobPlan, args: argparse.Namespace) -> int:
    """Show progress until the job ends; then save and print its result at once."""
    from vpsweb.cli.live import follow, why_failed
    from vpsweb.errors import JobFailed
    from vpsweb.view import JobView

    timeout = args.timeout or plan.worst_case_s() + TIMEOUT_MARGIN_S
    state = JobView.of(job.id, plan)
    try:
        follow(job.events(timeout=timeout), state, sys.stderr)
        output = job.result(timeout=TIMEOUT_MARGIN_S)
    except KeyboardInterrupt:
        job.cancel()
        sys.stderr.write("\n")  # off the line the terminal echoed ^C on
        return fail(f"interrupted: job {job.id} cancelled, no further LLM calls", EXIT_INTERRUPTED)
    except TimeoutError as exc:
        return fail(f"{exc}; the job keeps running: `vpsweb status {job.id}`", EXIT_FAILED)
    except JobFailed as exc:
        cause = why_failed(state, exc.stage, exc.cause)
        return fail(f"job {job.id} failed in {exc.stage}: {cause}", EXIT_FAILED)
    except JobError as exc:
        return fail(str(exc), EXIT_FAILED)
    with interrupt_deferred() as interrupted:
        show_output(output, args)
    if interrupted:  # Ctrl-C while the result was saved and printed: both finished
        print_error("interrupted; the result above is kept")
        return EXIT_INTERRUPTED
    return EXIT_OK


def _manual(job: Any, args: argparse.Namespace) -> int:
    from vpsweb.cli.manual import answer_loop, finish, left_waiting

    if answer_loop(job, args.output_dir):
        return finish(job, args)
    if not redis_url(args) and args.ephemeral:
        job.cancel()  # nothing would keep it: do not leave it half-done
        return fail(f"input ended: job {job.id} cancelled (--ephemeral keeps nothing)")
    return left_waiting(job)


def _manual_steps(args: argparse.Namespace) -> bool | list[str]:
    if args.manual:
        return True
    if args.manual_steps:
        return [s.strip() for s in args.manual_steps.split(",") if s.strip()]
    return False


def _dry_run(args: argparse.Namespace, cfg: AppConfig, offline: bool) -> int:
    """The estimate of the request, validated as a submission would be: nothing is
    submitted and no cluster is started. A max_cost below the estimate is said after
    it, with a submission's refusal's exit status."""
    from vpsweb.client.core import estimate_request
    from vpsweb.domain.estimate import budget_problems

    estimate = estimate_request(_request(args), cfg, offline=offline, manual=_manual_steps(args))
    sys.stdout.write((estimate.model_dump_json(indent=2) if args.json else estimate.text()) + "\n")
    if refused := budget_problems(estimate):
        return fail("a submission would be refused:\n  " + "\n  ".join(refused), EXIT_USAGE)
    return EXIT_OK


def cmd_translate(args: argparse.Namespace) -> int:
    from vpsweb.client.sync import Client, plan_job
    from vpsweb.config import load_config

    cfg = load_config()
    offline = True if args.offline else settings.offline()
    if args.dry_run:
        return _dry_run(args, cfg, offline)
    # Validate and plan before starting anything: bad input costs nothing, leaves nothing.
    manual = _manual_steps(args)
    plan = plan_job(_request(args), cfg, offline=offline, manual=manual)
    prepare_output_dir(args.output_dir)
    if not redis_url(args) and not offline and (missing := missing_keys(cfg, plan)):
        return fail(
            f"no API key: set {', '.join(missing)} for the models of mode "
            f"{plan.workflow_mode.value}, or run with --offline"
        )
    code: int | None = None
    try:
        with (
            cluster(args, needs_simulator(cfg, plan)) as url,
            Client(redis_url=url, config=cfg) as client,
        ):
            job = client.submit_plan(plan)
            sys.stderr.write(
                f"job {job.id} submitted ({plan.parallel_count} candidates, "
                f"mode {plan.workflow_mode.value}{', offline' if plan.offline else ''})\n"
            )
            code = _manual(job, args) if plan.manual_steps else _follow(job, plan, args)
    except KeyboardInterrupt:
        if code is None:
            raise
        # Ctrl-C while the embedded cluster stopped: the outcome was already shown.
        print_error("interrupted while stopping the local cluster; the result above is kept")
        return EXIT_INTERRUPTED
    return code
