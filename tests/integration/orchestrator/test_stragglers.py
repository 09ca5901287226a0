"""Straggler policies end to end (real Redis, workers and simulator), and batches.

One candidate's model is the simulator's ``sim-slow`` (1.5 s) while the others answer
in ~60 ms: under a quorum it is stopped and recorded as late, under ``wait_all`` it
is waited for. No timings are asserted: the outcome says which policy ran.
"""

from __future__ import annotations

import pytest

from tests.helpers.config import make_config_dir, slow_fourth
from tests.helpers.poems import FOG_OPENING as POEM
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.domain.progress import EventKind
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import RequestInvalid
from vpsweb.files.output import to_markdown

pytestmark = pytest.mark.integration


def request(**kw: object) -> dict:
    return {
        "poem": POEM,
        "source_lang": "en",
        "target_lang": "zh-CN",
        "title": "Fog",
        "parallel_count": 4,
        **kw,
    }


@pytest.fixture()
def client(redis_server, workers, tmp_path):
    cfg = load_config(make_config_dir(tmp_path, pipeline_edit=slow_fourth))
    with Client(redis_url=redis_server.url, config=cfg) as c:
        yield c


def _run(client: Client, **kw: object) -> tuple[TranslationOutput, list]:
    (job,) = client.submit_many([request(**kw)], offline=True)
    events = list(job.events(timeout=60))
    return job.result(timeout=5), events


def test_quorum_stops_the_straggler_and_records_it_late(client, sim_stats):
    before = sim_stats()
    out, events = _run(client, straggler={"policy": "quorum", "quorum": 0.75, "grace": 0.5})
    late = [c for c in out.candidates if c.status == "late"]
    assert [c.index for c in late] == [3]
    assert not late[0].ok and late[0].error and late[0].error.startswith("late")
    assert late[0].metrics is not None  # what it cost is kept (its abandoned call: nothing)
    assert [c.status for c in out.candidates[:3]] == ["succeeded"] * 3
    assert sorted(out.evaluation.presented_order) == [0, 1, 2]  # the judge saw the others
    own = [e for e in events if e.event is EventKind.CANDIDATE_FINISHED and e.index == 3]
    assert own and own[0].status == "late"
    last = [e for e in events if e.event is EventKind.MILESTONE][-1]
    assert last.parallel_progress == "3/4 completed, 1 late" and last.late == 1
    assert last.status == "completed" and last.failed == 0
    done = [e for e in events if e.event is EventKind.STAGE_COMPLETED]
    assert "3 of 4 candidates succeeded, 1 late" in done[0].message
    assert "Candidate #3 — slowpoke: late" in to_markdown(out)
    assert sim_stats()["cancelled"] > before["cancelled"]  # its call was abandoned


def test_wait_all_waits_for_the_straggler(client):
    out, events = _run(client, straggler="wait_all")
    assert [c.status for c in out.candidates] == ["succeeded"] * 4
    assert sorted(out.evaluation.presented_order) == [0, 1, 2, 3]
    last = [e for e in events if e.event is EventKind.MILESTONE][-1]
    assert last.parallel_progress == "4/4 completed" and not last.late


def test_submit_many_is_all_or_nothing(client, redis_server):
    bad = [request(), request(source_lang="xx"), request(parallel_count=99)]
    known = set(client.storage.jobs.recent_jobs(10_000))
    with pytest.raises(RequestInvalid) as caught:
        client.submit_many(bad, offline=True)
    assert [e.split(":")[0] for e in caught.value.errors] == ["request 1", "request 2"]
    assert set(client.storage.jobs.recent_jobs(10_000)) == known  # nothing was enqueued
    jobs = client.submit_many(
        [request(parallel_count=1, title=f"t{i}") for i in range(3)], offline=True
    )
    assert len({j.id for j in jobs}) == 3
    for job in jobs:
        assert job.result(timeout=60).candidates[0].ok
