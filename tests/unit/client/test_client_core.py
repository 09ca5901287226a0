"""One client core for sync and async: the same methods, one request, one follower.

``Client``/``Job`` and ``AsyncClient``/``AsyncJob`` drive ``vpsweb.client.core``
and offer the same public methods with the same parameters; the request is
declared once (``TranslationRequest``) and every entry point (``submit``, the
CLI's ``translate``, the web form) is checked against it field by field; client
modules reach the store only through the storage seam.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import vpsweb
from vpsweb.client.aio import AsyncClient, AsyncJob
from vpsweb.client.aio_batch import AsyncBatch
from vpsweb.client.core import REQUEST_FIELDS, Follower, missing_workers, request_of, straggler_of
from vpsweb.client.sync import Client, Job
from vpsweb.client.sync_batch import Batch
from vpsweb.domain.models import StrategyOverrides, TranslationRequest
from vpsweb.domain.progress import EventKind, ProgressEvent
from vpsweb.errors import RequestInvalid
from vpsweb.storage import JobStatus

SRC = Path(vpsweb.__file__).parent
CLIENT_MODULES = (
    "client/sync.py",
    "client/aio.py",
    "client/core.py",
    "client/batch_plans.py",
    "client/batching.py",
    "client/sync_batch.py",
    "client/aio_batch.py",
    "orchestrator/lifecycle_aio.py",
)
# What cannot be the same on both sides: the context-manager protocols differ by name.
ONLY_SYNC = {"__enter__", "__exit__"}
ONLY_ASYNC = {"__aenter__", "__aexit__"}
SUBMIT_OPTIONS = {"offline", "manual"}  # how to run the request, not what it asks


def _public(cls: type) -> dict[str, inspect.Signature | str]:
    found: dict[str, inspect.Signature | str] = {}
    for name, member in vars(cls).items():
        if name.startswith("_") and name not in ONLY_SYNC | ONLY_ASYNC:
            continue
        if isinstance(member, property):
            found[name] = "property"
        elif isinstance(member, classmethod | staticmethod):
            found[name] = inspect.signature(member.__func__)
        elif callable(member):
            found[name] = inspect.signature(member)
    return found


def _shape(sig: inspect.Signature | str) -> Any:
    """Parameter names, kinds and defaults (annotations differ: AsyncJob vs Job)."""
    if isinstance(sig, str):
        return sig
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(
    ("sync", "aio"), [(Client, AsyncClient), (Job, AsyncJob), (Batch, AsyncBatch)]
)
def test_sync_and_async_offer_the_same_methods(sync: type, aio: type) -> None:
    s, a = _public(sync), _public(aio)
    assert set(s) - ONLY_SYNC == set(a) - ONLY_ASYNC
    for name in set(s) - ONLY_SYNC:
        assert _shape(s[name]) == _shape(a[name]), name
        if not isinstance(a[name], str) and name not in ("plan", "from_env", "config"):
            member = inspect.unwrap(vars(aio)[name])
            coroutine = inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
            assert coroutine, f"{aio.__name__}.{name} is not a coroutine"


def test_submit_takes_the_request_fields_and_nothing_else() -> None:
    for cls in (Client, AsyncClient):
        params = set(inspect.signature(cls.submit).parameters) - {"self"}
        assert params == set(REQUEST_FIELDS) | SUBMIT_OPTIONS, cls.__name__


def test_request_of_keeps_the_fields_and_plain_data() -> None:
    args = {
        "self": object(),
        "poem": "p",
        "source_lang": "en",
        "target_lang": "zh-CN",
        "strategy": StrategyOverrides(few_shots="x"),
        "straggler": None,
        "offline": True,
    }
    request = request_of(args)
    assert set(request) == {"poem", "source_lang", "target_lang", "strategy"}
    assert request["strategy"]["few_shots"] == "x"
    TranslationRequest.model_validate(request)


def test_the_cli_translate_options_cover_the_request(tmp_path: Path) -> None:
    from vpsweb.cli.parser import build_parser
    from vpsweb.cli.translate import _request

    files = {n: tmp_path / f"{n}.txt" for n in ("poem", "shots", "brief")}
    for n, f in files.items():
        f.write_text(f"{n} text\n", encoding="utf-8")
    terms = tmp_path / "terms.csv"
    terms.write_text("source,target\npoem,诗\n", encoding="utf-8")
    argv = [
        *("translate", str(files["poem"]), "--source-lang", "en", "--target-lang", "zh-CN"),
        *("--parallel-count", "2", "--mode", "hybrid", "--title", "T", "--author", "A"),
        *("--adaptation-level", "balanced", "--repetition-policy", "strict"),
        *("--additions-policy", "forbid", "--prosody-target", "free"),
        *("--few-shots", str(files["shots"]), "--background", str(files["brief"])),
        *("--straggler", "quorum:0.5:0.2", "--priority", "batch", "--max-cost", "2"),
        *("--idempotency-key", "retry-7"),
        *("--glossary", str(terms), "--glossary-mode", "strict"),
    ]
    args = build_parser().parse_args(argv)
    request = _request(args)
    assert set(request) == set(REQUEST_FIELDS)
    assert set(request["strategy"]) == set(StrategyOverrides.model_fields)
    assert all(v is not None for v in request["strategy"].values())
    parsed = TranslationRequest.model_validate(request)
    assert parsed.straggler is not None and parsed.straggler.quorum == 0.5
    assert parsed.background_briefing and parsed.strategy.few_shots
    assert parsed.glossary is not None and parsed.glossary.mode == "strict"
    assert [(t.source, t.target) for t in parsed.glossary.terms] == [("poem", "诗")]


def test_the_web_form_covers_the_request() -> None:
    from vpsweb.web import forms

    values = {
        "poem": "p",
        "source_lang": "en",
        "target_lang": "zh-CN",
        "title": "T",
        "author": "A",
        "workflow_mode": "hybrid",
        "parallel_count": "2",
        "adaptation_level": "balanced",
        "repetition_policy": "strict",
        "additions_policy": "forbid",
        "prosody_target": "free",
        "few_shots": "shots",
        "background_briefing": "brief",
        "straggler": "wait_all",
        "priority": "batch",
        "max_cost": "0.5",
        "idempotency_key": "0f" * 16,
        "glossary": "p: 诗",
        "glossary_mode": "strict",
    }
    request = forms.request_of(values)
    assert set(request) == set(REQUEST_FIELDS)
    assert set(request["strategy"]) == set(StrategyOverrides.model_fields)
    parsed = TranslationRequest.model_validate(request)
    assert parsed.idempotency_key and parsed.idempotency_key.startswith("0f" * 16 + "-")
    assert forms.request_of(values) == request  # posted twice: the same key
    edited = forms.request_of({**values, "poem": "q"})["idempotency_key"]
    assert edited != parsed.idempotency_key  # changed and posted: another
    assert forms.request_of({**values, "idempotency_key": ""})["idempotency_key"] is None
    assert parsed.straggler is not None and parsed.straggler.policy == "wait_all"
    assert parsed.background_briefing == "brief" and parsed.strategy.few_shots == "shots"
    assert parsed.glossary is not None and parsed.glossary.mode == "strict"
    # Every field the form reads is on the page.
    import jinja2

    from vpsweb.config import load_config

    env = jinja2.Environment(loader=jinja2.PackageLoader("vpsweb.web", "templates"))
    context = forms.context(load_config(), {}, {})
    page = env.get_template("submit.html").render(csrf_token="t", **context)
    for name in forms.TEXT_FIELDS:
        assert f'name="{name}"' in page, name
    assert forms.errors_by_field(["straggler.quorum: too big"]) == {"straggler": "too big"}
    with pytest.raises(RequestInvalid) as bad:
        forms.request_of({**values, "straggler": "sometimes"})
    assert list(forms.errors_by_field(bad.value.errors)) == ["straggler"]
    # A bad glossary is said beside the glossary field, each line named.
    with pytest.raises(RequestInvalid) as bad:
        forms.request_of({**values, "glossary": "a: b\nc:\n"})
    assert forms.errors_by_field(bad.value.errors) == {"glossary": "line 2: 'c' has no target"}


def test_straggler_spelling() -> None:
    assert straggler_of("") is None
    assert straggler_of("quorum:0.5") == {"policy": "quorum", "quorum": "0.5"}
    with pytest.raises(RequestInvalid):
        straggler_of("quorum:1:2:3")


# --- the follower -------------------------------------------------------------------

ROUTING = {"initial_translation": "q.cand", "evaluation": "q.eval"}


def test_the_follower_warns_once_and_withdraws() -> None:
    f = Follower("0123456789ab", lambda: ROUTING, every_s=3)
    assert f.begin_check(100.0)
    first = f.checked(JobStatus.QUEUED, {})
    assert [e.event for e in first] == [EventKind.WARNING]
    assert "no worker is running" in first[0].message and "q.cand" in first[0].message
    assert not f.begin_check(101.0)  # quiet checks every 3 s, not every read
    assert f.begin_check(103.0)
    assert f.checked(JobStatus.QUEUED, {}) == []  # said once
    assert f.begin_check(106.0)
    partial = f.checked(JobStatus.QUEUED, {"w1": ["q.cand"]})
    said = [(e.status, "no worker is running" in e.message) for e in partial]
    assert said == [("", False), ("resolved", True)] and "queue q.eval" in partial[0].message
    # Work goes on while warnings are out: the terminal event forces a last look.
    assert f.begin_check(106.5, ProgressEvent(event=EventKind.JOB_FINISHED))
    done = f.checked(JobStatus.SUCCEEDED, {"w1": ["q.cand", "q.eval"]})
    assert [e.status for e in done] == ["resolved"] and not f.said
    # No warnings out: events need no look.
    assert not f.begin_check(200.0, ProgressEvent(event=EventKind.JOB_FINISHED))


def test_the_follower_leaves_a_person_alone_and_stalls_only_overdue_jobs() -> None:
    f = Follower("0123456789ab", lambda: ROUTING)
    assert f.checked(JobStatus.WAITING, {}) == [] and not f.wants_workers(JobStatus.WAITING)
    assert f.checked(JobStatus.QUEUED, None) == []  # workers unread: nothing changes
    assert f.stalled(JobStatus.RUNNING, 10.0, 11.0)
    assert not f.stalled(JobStatus.RUNNING, 12.0, 11.0)
    assert not f.stalled(JobStatus.WAITING, 10.0, 11.0)
    assert not f.stalled(JobStatus.FAILED, 10.0, 11.0)
    assert not f.stalled(JobStatus.QUEUED, None, 11.0)


def test_missing_workers_names_each_queue() -> None:
    found = missing_workers({"w": ["q.cand"]}, ROUTING)
    assert len(found) == 1 and "queue q.eval (evaluation)" in found[0]
    assert missing_workers({"w": ["q.cand", "q.eval"]}, ROUTING) == []


# --- the storage seam -----------------------------------------------------------------


def _tree(name: str) -> ast.Module:
    return ast.parse((SRC / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CLIENT_MODULES)
def test_client_modules_use_only_the_storage_seam(name: str) -> None:
    bad = []
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        bad += [t for t in targets if t.startswith("vpsweb.storage.redis")]
        bad += [t for t in targets if t.split(".")[0] == "redis"]
    assert bad == []


@pytest.mark.parametrize("name", CLIENT_MODULES)
def test_client_modules_call_no_other_class_private_methods(name: str) -> None:
    """``x._name`` only on ``self`` (a class's own) or a handle's own client
    (``self._client``, an attribute, not a call into another class's internals)."""
    bad = []
    for node in ast.walk(_tree(name)):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
            continue
        if node.attr.startswith("__"):
            continue
        owner = ast.unparse(node.value)
        if owner in ("self", "cls"):
            continue
        bad.append(f"{owner}.{node.attr}")
    assert bad == []
