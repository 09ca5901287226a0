"""The architecture's rules, checked so that they stay true.

One stage table from which the rest derives, each other concern keyed by its
names; a domain core free of Celery and Redis; a package layout by role (a small
root, no two unrelated modules of one name); no import cycle among vpsweb's
modules; one error root; one settings module for every VPSWEB_* name; a public
API that imports without side effects.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import subprocess
import sys
import typing
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

import vpsweb
from vpsweb import errors
from vpsweb.config import load_config, packaged_config_dir
from vpsweb.domain.plan import build_plan
from vpsweb.domain.result import TranslationOutput
from vpsweb.stages.table import STAGE_NAMES, STAGES, stage_bounds
from vpsweb.workers.routing import FINALIZE_TASK, TASK_NAMES

SRC = Path(vpsweb.__file__).parent
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


# --- the stage table -------------------------------------------------------------


def test_every_stage_lands_in_the_result_with_its_output_type() -> None:
    hints = typing.get_type_hints(TranslationOutput)
    for s in STAGES:
        expected = list[s.output] if s.fan_out else s.output  # type: ignore[name-defined]
        assert hints[s.result_field] == expected, s.name


def test_every_stage_has_a_prompt_file_and_a_model_in_every_mode() -> None:
    root = packaged_config_dir()
    pipeline = yaml.safe_load((root / "pipeline.yaml").read_text())
    for s in STAGES:
        assert (root / "prompts" / f"{s.prompt}.yaml").is_file(), s.name
        for mode, settings in pipeline["modes"].items():
            assert s.name in settings["steps"], (mode, s.name)
    names = [TASK_NAMES[s.name] for s in STAGES] + [FINALIZE_TASK]
    assert len(set(names)) == len(names)
    # A fan-out stage is a chord header: something must follow it as the callback.
    assert not STAGES[-1].fan_out


def test_every_stage_has_an_entry_in_each_concern_keyed_by_its_name() -> None:
    """The table holds what a stage is; what each concern does with it lives beside
    that concern's code, keyed by the stage's name: none may miss a stage or keep one
    that is gone."""
    from vpsweb.domain.manual_answers import CHECKS
    from vpsweb.files.sections import SECTIONS
    from vpsweb.orchestrator.summaries import SUMMARIES
    from vpsweb.simulator.answers import MARKERS
    from vpsweb.stages.runs import LOST, RUN
    from vpsweb.workers.routing import QUEUES

    concerns = {
        "stages.runs.RUN": RUN,
        "workers.routing.TASK_NAMES": TASK_NAMES,
        "workers.routing.QUEUES": QUEUES,
        "orchestrator.summaries.SUMMARIES": SUMMARIES,
        "files.sections.SECTIONS": SECTIONS,
        "domain.manual_answers.CHECKS": CHECKS,
        "simulator.answers.MARKERS": MARKERS,
    }
    for where, table in concerns.items():
        assert list(table) == list(STAGE_NAMES), where
    assert sorted(LOST) == sorted(s.name for s in STAGES if s.fan_out)
    # The simulator recognises a prompt by its marker: each must be its stage's own.
    assert len(set(MARKERS.values())) == len(MARKERS)


def test_progress_bounds_tile_the_bar_from_0_to_100() -> None:
    weights = load_config().progress_weights()
    bounds = [stage_bounds(weights, s.name) for s in STAGES]
    assert bounds[0][0] == 0 and bounds[-1][1] == 100
    for (_, end), (start, _) in itertools.pairwise(bounds):
        assert end == start


def test_the_canvas_is_derived_from_the_table() -> None:
    from vpsweb.orchestrator.canvas import build_canvas
    from vpsweb.workers.factory import create_app

    cfg = load_config()
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 3},
        cfg,
        job_id="0123456789ab",
        offline=True,
    )
    app = create_app("redis://127.0.0.1:9/0")  # building signatures connects nowhere
    canvas = build_canvas(app, plan, cfg.routing())
    app.close()
    # Celery folds the links after a chord into its body; flatten in execution order.
    header: list = []
    links: list = []

    def walk(sig) -> None:
        if hasattr(sig, "body") and hasattr(sig, "tasks"):  # a chord
            header.extend(sig.tasks)
            walk(sig.body)
        elif hasattr(sig, "tasks"):  # a chain
            for t in sig.tasks:
                walk(t)
        else:
            links.append(sig)

    walk(canvas)
    assert [t.task for t in header] == ["vpsweb.candidate"] * 3
    assert [t.id for t in header] == [f"{plan.job_id}.candidate-{i}" for i in range(3)]
    assert [t.args for t in header] == [(plan.job_id, i) for i in range(3)]
    assert [t.task for t in links] == [
        "vpsweb.evaluate",
        "vpsweb.editor_review",
        "vpsweb.translator_revision",
        "vpsweb.revision_check",
        "vpsweb.finalize",
    ]
    assert [t.id for t in links] == [
        f"{plan.job_id}.{k}"
        for k in (
            "evaluation",
            "editor_review",
            "translator_revision",
            "revision_check",
            "finalize",
        )
    ]
    assert all(t.immutable for t in [*header, *links])
    routing = cfg.routing()
    assert [t.options["queue"] for t in [*header, *links]] == [
        *[routing["initial_translation"]] * 3,
        routing["evaluation"],
        routing["editor_review"],
        routing["translator_revision"],
        routing["revision_check"],
        routing["finalize"],
    ]


# --- layering ----------------------------------------------------------------------

# The domain core: every module under these packages (the stages import no Celery or
# Redis either, so they belong to it).
DOMAIN_CORE_PACKAGES = ("vpsweb.domain", "vpsweb.stages")


def _domain_core() -> list[str]:
    return [name for name, _ in _modules() if name.startswith(DOMAIN_CORE_PACKAGES)]


def test_the_domain_core_loads_no_celery_kombu_or_redis() -> None:
    core = _domain_core()
    assert "vpsweb.domain.models" in core and "vpsweb.stages.table" in core
    code = (
        "import sys\n"
        f"for m in {core!r}: __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu', 'redis'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


MAX_ROOT_MODULES = 12

# Two modules may share a file name only as one concept on the two sides of a seam
# (the domain's side and the store's side); anything else is renamed so that a name
# says which module it is.
SEAM_PAIRS = {
    # progress events and snapshots / their log in Redis
    "progress": {"vpsweb.domain.progress", "vpsweb.storage.redis.progress"},
    # usage summaries and counters / their records in Redis
    "usage": {"vpsweb.monitoring.usage", "vpsweb.storage.redis.usage"},
    # prompts a person answers (the LLM stand-in) / the parked prompts and answers in Redis
    "manual_answers": {"vpsweb.domain.manual_answers", "vpsweb.storage.redis.manual_answers"},
    # the providers' allowances: the seam / in Redis
    "quotas": {"vpsweb.storage.quotas", "vpsweb.storage.redis.quotas"},
    # batch records, addresses and tallies: the seam / in Redis
    "batches": {"vpsweb.storage.batches", "vpsweb.storage.redis.batches"},
    # step leases and what a renewal reads of the job: the seam / in Redis
    "leases": {"vpsweb.storage.leases", "vpsweb.storage.redis.leases"},
    # job ends announced to the steps in flight: the seam / over Redis pub/sub
    "signals": {"vpsweb.storage.signals", "vpsweb.storage.redis.signals"},
}
# Implementations of the same storage interfaces side by side: storage/memory/x.py is
# the in-process twin of storage/redis/x.py (one contract suite runs over both).
STORE_IMPLEMENTATIONS = ("vpsweb.storage.memory.", "vpsweb.storage.redis.")


def test_the_package_root_stays_small() -> None:
    root = sorted(p.name for p in SRC.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_no_two_modules_share_a_name_unless_they_are_a_seam_pair() -> None:
    by_name: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules():
        if path.stem not in ("__init__", "__main__"):
            twin = name.replace(*STORE_IMPLEMENTATIONS)  # a memory twin counts as one
            by_name[path.stem].add(twin)
    shared = {stem: mods for stem, mods in by_name.items() if len(mods) > 1}
    assert shared == {stem: SEAM_PAIRS[stem] for stem in shared if stem in SEAM_PAIRS}, shared


def _resolve(name: str, modules: set[str]) -> str | None:
    """The module an import of ``name`` loads (a name imported from a module resolves
    to that module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _import_graph() -> dict[str, set[str]]:
    """Which vpsweb modules import which: every import statement, at module level, in
    functions and under TYPE_CHECKING alike, relative ones and ``from vpsweb import x``
    of a submodule included."""
    paths = dict(_modules())
    modules = set(paths)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in paths.items():
        package = name if path.stem == "__init__" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                if target.split(".")[0] == "vpsweb":
                    found = _resolve(target, modules)
                    if found is not None and found != name:
                        edges[name].add(found)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycle_among_vpsweb_modules() -> None:
    edges = _import_graph()
    assert len(edges) > 100 and "vpsweb.stages.table" in edges["vpsweb.domain.plan"]
    described = [
        " ; ".join(f"{m} -> {sorted(edges[m] & set(c))}" for m in c) for c in _cycles(edges)
    ]
    assert described == []


def test_functions_and_modules_stay_readable() -> None:
    long_functions, long_modules = [], []
    for name, path in _modules():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name} ({size} lines)")
    assert long_functions == []
    assert long_modules == []


# Private attributes reached on something other than self/cls, each one explained.
PRIVATE_ACCESS_ALLOWED = {
    # namedtuple's documented copy-with-changes (underscored only to avoid field names)
    ("vpsweb.settings", "parts._replace"),
    # kombu's Channel._connparams, which RedisChannel overrides and extends
    ("vpsweb.workers.broker", "super()._connparams"),
    # Celery's SentinelBackend builds its Sentinel there, the one place to choose the
    # connection class (vpsweb.redis_sentinel)
    ("vpsweb.workers.results", "super()._get_sentinel_instance"),
    # redis-py's SentinelManagedConnection connects there; FollowingConnection resolves
    # the master its own way and leaves replicas' connections to it
    ("vpsweb.redis_sentinel", "super()._connect_retry"),
}


def test_no_class_reaches_into_anothers_private_attributes() -> None:
    """``x._name`` only on ``self`` or ``cls``: a class's privates are its own."""
    found = set()
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            if not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.add((name, ast.unparse(node)))
    assert sorted(found - PRIVATE_ACCESS_ALLOWED) == []
    assert sorted(PRIVATE_ACCESS_ALLOWED - found) == []  # no stale exceptions


# --- errors and settings ------------------------------------------------------------


def test_every_public_exception_is_a_vpsweb_error() -> None:
    found = []
    for info in pkgutil.walk_packages(vpsweb.__path__, "vpsweb."):
        if info.name == "vpsweb.workers.app" or info.name.endswith("__main__"):
            continue  # the worker's entry point builds an app from the environment
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not name.startswith("_")
            ):
                found.append(obj)
    assert len(found) >= 20
    assert [c.__name__ for c in found if not issubclass(c, errors.VpswebError)] == []
    assert not issubclass(errors.JobNotFound, KeyError)


def _string_constants(tree: ast.AST) -> list[str]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_only_the_settings_module_names_vpsweb_variables() -> None:
    offenders = [
        f"{name}: {text!r}"
        for name, path in _modules()
        if name != "vpsweb.settings"
        for text in _string_constants(ast.parse(path.read_text()))
        if "VPSWEB_" in text
    ]
    assert offenders == []


# --- the public API -------------------------------------------------------------------


def test_importing_the_public_api_reads_no_config_and_builds_nothing(tmp_path: Path) -> None:
    code = """
import sys
import vpsweb
from vpsweb import Client, Job, JobNotFound, RequestInvalid, VpswebError, __version__
from vpsweb.config.loader import _load_cached
client = Client(redis_url="redis://127.0.0.1:9/0")   # nothing listens there
assert _load_cached.cache_info().currsize == 0, "config was read"
assert not any(m.split(".")[0] in ("celery", "kombu") for m in sys.modules), "celery loaded"
assert "vpsweb.workers.app" not in sys.modules
try:
    client.plan({"poem": "x", "source_lang": "en", "target_lang": "zh-CN"})
except vpsweb.ConfigError as exc:
    print("config read on first use:", exc)
"""
    env = {"PATH": "/usr/bin:/bin", "VPSWEB_CONFIG_DIR": str(tmp_path / "nonexistent")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "config read on first use:" in out.stdout
    assert "nonexistent: config directory not found" in out.stdout


def test_the_worker_app_refuses_to_guess_a_redis_url() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", "import vpsweb.workers.app"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "vpsweb: a vpsweb worker needs the cluster's Redis: set VPSWEB_REDIS_URL "
        "(e.g. redis://:password@host:6379/0) or pass --redis-url"
    )


@pytest.mark.parametrize("name", vpsweb.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(vpsweb, name) is not None


def test_version_is_the_installed_distribution_and_the_cli_shows_it() -> None:
    from importlib.metadata import version

    from vpsweb import __version__

    assert __version__ == version("vpsweb") and __version__[0].isdigit()
    out = subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"vpsweb {__version__}"


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:9/0", "amqp://guest:guest@127.0.0.1:9//"])
def test_each_queue_has_its_own_binding(broker: str) -> None:
    """The worker banner prints these: every queue bound to vpsweb.candidates alarmed
    Celery users, although routing worked."""
    from vpsweb.config import load_config
    from vpsweb.workers.broker import celery_settings

    queues = celery_settings(broker, load_config())["task_queues"]
    assert {q.name for q in queues} == set(load_config().routing().values())
    for q in queues:
        assert (q.exchange.name, q.exchange.type, q.routing_key) == (q.name, "direct", q.name)
