"""Manual mode in the terminal: show each waiting prompt, read the person's answer.

`vpsweb translate --manual` runs this loop after submitting; `vpsweb manual JOB`
resumes a waiting job from any machine (a job waits in Redis for as long as it is
kept). Each prompt is printed and, with an output directory, also saved as a file
to paste from; an answer ends with a line holding only "." or with end of input.
An answer the stage cannot use is refused with what is missing and asked again.
A prompt answered elsewhere meanwhile (another shell, the web page) is noticed
while waiting for input (see answer_input), and the session moves on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpsweb.cli.answer_input import AnsweredElsewhere, read_answer, reader_for
from vpsweb.cli.common import EXIT_FAILED, EXIT_OK, fail, open_client, show_output
from vpsweb.errors import AnswerRefused, AnswerRejected

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.client.sync import Job
    from vpsweb.domain.manual_answers import PendingPrompt

POLL_S = 0.3


def _save_prompt(prompt: PendingPrompt, job_id: str, out_dir: str | None) -> Path | None:
    if not out_dir:
        return None
    path = Path(out_dir) / f"{job_id}_{prompt.key}.prompt.txt"
    path.write_text(prompt.text() + "\n", encoding="utf-8")
    return path


def _show_prompt(prompt: PendingPrompt, job_id: str, out_dir: str | None) -> None:
    err = sys.stderr
    err.write(f"\n=== {prompt.display_name}: prompt {prompt.key} (job {job_id}) ===\n")
    for m in prompt.messages:
        err.write(f"--- {m['role']} ---\n{m['content'].rstrip()}\n")
    if (path := _save_prompt(prompt, job_id, out_dir)) is not None:
        err.write(f"(also saved as {path})\n")
    err.write(f"=== paste the answer to {prompt.key}; end with a line '.' or Ctrl-D ===\n")
    err.flush()


def _still_pending(job: Job, key: str) -> Callable[[], bool]:
    def check() -> bool:
        return any(p.key == key for p in job.pending())

    return check


def _answered_elsewhere(key: str) -> bool:
    sys.stderr.write(f"{key} was answered elsewhere (another shell or the web page); moving on\n")
    return True


def answer_interactively(job: Job, prompt: PendingPrompt, out_dir: str | None) -> bool:
    """Ask until the stage accepts an answer or the prompt is answered elsewhere;
    False at the end of input."""
    _show_prompt(prompt, job.id, out_dir)
    reader = reader_for(sys.stdin)
    while True:
        try:
            text = reader.read(_still_pending(job, prompt.key))
        except AnsweredElsewhere:
            return _answered_elsewhere(prompt.key)
        if text is None:
            return False
        try:
            job.answer(prompt.key, text)
        except AnswerRejected as exc:
            sys.stderr.write(f"vpsweb: {exc}; the prompt is still waiting: answer again\n")
            continue
        except AnswerRefused:  # answered elsewhere while this answer was being pasted
            return _answered_elsewhere(prompt.key)
        sys.stderr.write(f"answer to {prompt.key} accepted\n")
        return True


def answer_loop(job: Job, out_dir: str | None) -> bool:
    """Answer prompts as they come until the job ends (True) or input ends (False)."""
    seen = ""
    while True:
        record = job.record()
        if record.status.terminal:
            return True
        pending = job.pending()  # afresh after each answer: others may answer too
        if pending and not answer_interactively(job, pending[0], out_dir):
            return False
        if not pending:
            snap = job.progress()
            line = f"[{snap.progress_percent:5.1f}%] {snap.stage} {snap.status}".rstrip()
            if line != seen:
                sys.stderr.write(line + "\n")
                seen = line
            time.sleep(POLL_S)


def finish(job: Job, args: argparse.Namespace) -> int:
    """After the loop: the result, or where the job stands."""
    from vpsweb.errors import JobError

    try:
        output = job.result(timeout=60)
    except JobError as exc:
        return fail(str(exc), EXIT_FAILED)
    show_output(output, args)
    return EXIT_OK


def left_waiting(job: Job) -> int:
    keys = ", ".join(p.key for p in job.pending()) or "its next step"
    sys.stderr.write(
        f"input ended: job {job.id} waits for {keys}; continue with `vpsweb manual {job.id}`\n"
    )
    return EXIT_OK


def _answer_one(job: Job, args: argparse.Namespace) -> int:
    if args.answer_file:
        text: str | None = Path(args.answer_file).read_text(encoding="utf-8")
    else:
        text = read_answer(sys.stdin)
    if not text or not text.strip():
        return fail(f"no answer given for {args.key}")
    try:
        moved = job.answer(args.key, text)
    except (AnswerRejected, AnswerRefused) as exc:
        return fail(str(exc))
    waiting = ", ".join(p.key for p in job.pending())
    state = "the job moves on" if moved else f"still waiting: {waiting or 'nothing yet'}"
    sys.stderr.write(f"answer to {args.key} accepted; {state}\n")
    return EXIT_OK


def cmd_manual(args: argparse.Namespace) -> int:
    from vpsweb.cli.common import redis_url

    if args.key:
        with open_client(args) as client:
            return _answer_one(client.get(args.job), args)
    if redis_url(args) is None:  # the local store: its job needs a local worker
        return _resume_embedded(args)
    with open_client(args) as client:
        job = client.get(args.job)
        return finish(job, args) if answer_loop(job, args.output_dir) else left_waiting(job)


def _resume_embedded(args: argparse.Namespace) -> int:
    from vpsweb.cli.cluster import cluster_for
    from vpsweb.client.sync import Client

    with open_client(args) as client:
        plan = client.get(args.job).record().plan
    args.ephemeral = False
    with cluster_for(args, plan) as url, Client(redis_url=url) as client:
        job = client.get(args.job)
        return finish(job, args) if answer_loop(job, args.output_dir) else left_waiting(job)


def add_manual_parser(sub: Any) -> None:
    p = sub.add_parser("manual", help="answer a manual job's waiting prompts")
    p.add_argument("job")
    p.add_argument("--key", help="answer this prompt only (candidate-0, evaluation, ...)")
    p.add_argument("--answer-file", help="with --key: the answer (default: standard input)")
    p.add_argument("--output-dir", help="save each prompt and the result here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--redis-url", help="the cluster's Redis (default: the local store)")
    p.set_defaults(func=cmd_manual)
