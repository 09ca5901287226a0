"""The glossary on real jobs (Redis, Celery workers, the simulator over HTTP through the
openai SDK): the simulator honours the prompts' Required terms block, so a plain job
has no flags; a miss planted by a model-name directive (one candidate's variant, or
the reviser) is flagged in the result and the job's events, and with ``strict`` the
candidate is gated before judging; every candidate gated fails the job as today."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import make_config_dir, use_models, variant_on
from tests.helpers.poems import FOG
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.domain.progress import EventKind
from vpsweb.errors import JobFailed
from vpsweb.local.processes import RedisServer

pytestmark = pytest.mark.integration

TERMS = {"fog": "迷雾", "harbor": {"target": "港湾", "note": "not 海港"}}
RAW = [
    'glossary: "fog" should be "迷雾" (left untranslated)',
    'glossary: "fog" should be "迷雾" in the title (left untranslated)',
    'glossary: "harbor" should be "港湾" (left untranslated)',
]
MISSES = [m.replace("left untranslated", "translated otherwise") for m in RAW]

Edit = Callable[[dict[str, Any]], None]


def _client(redis_server: RedisServer, tmp: Path, *edits: Edit) -> Client:
    def edit(d: dict[str, Any]) -> None:
        d["straggler"] = "wait_all"  # every candidate is judged or gated, none late
        for change in edits:
            change(d)

    return Client(
        redis_url=redis_server.url, config=load_config(make_config_dir(tmp, pipeline_edit=edit))
    )


def _submit(client: Client, mode: str) -> Any:
    return client.submit(
        poem=FOG,
        source_lang="en",
        target_lang="zh-CN",
        title="Fog",
        author="Carl Sandburg",
        parallel_count=3,
        glossary={"terms": TERMS, "mode": mode},
        offline=True,
    )


def test_a_plain_job_holds_every_term(redis_server, workers, tmp_path: Path) -> None:
    with _client(redis_server, tmp_path) as client:
        out = _submit(client, "strict").result(timeout=90)
    assert out.flags == [] and out.evaluation.gated == [] and out.revision_check.flags == []
    assert "迷雾" in out.final.translation and "港湾" in out.final.translation
    assert out.request.glossary is not None and out.request.glossary.mode == "strict"


def test_flag_mode_flags_a_candidate_and_the_revision(
    redis_server, workers, tmp_path: Path
) -> None:
    def reviser_misses(d: dict[str, Any]) -> None:
        use_models(d, translator_revision="sim-glossmiss")

    with _client(redis_server, tmp_path, variant_on(1, "sim-glossraw"), reviser_misses) as client:
        job = _submit(client, "flag")
        events = list(job.events(timeout=90))
        out = job.result(timeout=30)
    ev = out.evaluation
    assert ev.gated == [] and [(g.index, g.reasons) for g in ev.flagged] == [(1, RAW)]
    assert all(1 in j.order for j in ev.judgements if j.selected_index is not None)
    assert out.revision_check.flags == MISSES
    assert [(f.where, f.message) for f in out.flags] == [
        *(("candidate #1", m) for m in RAW),
        *(("revision", m) for m in MISSES),
    ]
    assert [f.final for f in out.flags if f.where == "revision"] == [
        out.final.source == "revision"
    ] * 3
    # The flags are in the events a follower reads (the CLI's and the page's views).
    completed = [e for e in events if e.event is EventKind.STAGE_COMPLETED and e.flagged]
    assert [list(e.flagged) for e in completed] == [[1], [-1]]
    assert completed[0].flagged[1] == "; ".join(RAW)


def test_strict_mode_gates_the_candidate_before_judging(
    redis_server, workers, tmp_path: Path
) -> None:
    with _client(redis_server, tmp_path, variant_on(1, "sim-glossmiss")) as client:
        job = _submit(client, "strict")
        events = list(job.events(timeout=90))
        out = job.result(timeout=30)
    ev = out.evaluation
    assert [(g.index, g.reasons) for g in ev.gated] == [(1, MISSES)]
    assert ev.flagged == [] and out.flags == [] and ev.selected_index != 1
    assert all(1 not in j.order for j in ev.judgements)
    judged = next(e for e in events if e.event is EventKind.STAGE_COMPLETED and e.gated)
    assert judged.gated == {1: "; ".join(MISSES)}


def test_strict_mode_with_every_candidate_missing_fails_the_job(
    redis_server, workers, tmp_path: Path
) -> None:
    def all_miss(d: dict[str, Any]) -> None:
        use_models(d, initial_translation="sim-glossmiss")

    with _client(redis_server, tmp_path, all_miss) as client:
        job = _submit(client, "strict")
        with pytest.raises(JobFailed) as failed:
            job.result(timeout=90)
    assert failed.value.stage == "Translation Evaluation"
    assert "no candidate passed the checks before judging" in failed.value.cause
    assert f"candidate 0: {MISSES[0]}, {MISSES[1]}" in failed.value.cause
