"""The cluster a CLI command runs against: the configured one, or an embedded one.

Shared by `vpsweb translate`, `vpsweb batch` and `vpsweb resume` (which reopens a manual job's
local store with a worker): neither command imports the other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vpsweb import settings
from vpsweb.cli.common import redis_url
from vpsweb.errors import SettingsError

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.config import AppConfig
    from vpsweb.domain.plan import JobPlan

LEFTOVERS_SAID = 3


def needs_simulator(cfg: AppConfig, plan: JobPlan) -> bool:
    from vpsweb.llm.endpoints import resolve

    sim = cfg.simulator_provider()
    return plan.offline or any(resolve(cfg.models, c).info.provider == sim for c in plan.calls())


def missing_keys(cfg: AppConfig, plan: JobPlan) -> list[str]:
    """API keys an embedded worker (this process's environment) would lack."""
    from vpsweb.llm.endpoints import resolve

    calls = [c for c in plan.calls() if c.step not in plan.manual_steps]
    envs = {e.api_key_env for e in (resolve(cfg.models, c) for c in calls)}
    return sorted(e for e in envs if e and not os.environ.get(e))


@contextlib.contextmanager
def cluster(
    args: argparse.Namespace, needs_simulator: bool, *, must_keep: bool = False
) -> Iterator[str]:
    """The configured cluster, or an embedded one, torn down afterwards. ``must_keep``:
    the run needs the local store (it carries on jobs kept there): refused while another
    run owns it, instead of running on a throw-away store."""
    if url := redis_url(args):
        yield url
        return
    from vpsweb.local.data_dir import LocalStore
    from vpsweb.local.embedded import EmbeddedCluster

    store = None
    if not args.ephemeral:
        store = LocalStore(settings.data_dir())
        if not store.try_lock():
            if must_keep:
                raise SettingsError(
                    f"another vpsweb run is using the local store {store.root}; "
                    "try again when it has ended"
                )
            sys.stderr.write(
                f"another vpsweb run is using the local store {store.root}; "
                "this job will not be kept after the run\n"
            )
            store = None
    sys.stderr.write(
        f"starting embedded Redis, worker{' and LLM simulator' if needs_simulator else ''}...\n"
    )
    # A little simulated latency so that the demo's progress is visible.
    sim_args = (
        []
        if os.environ.get(f"{settings.SIM_ENV_PREFIX}LATENCY_MS")
        else ["--latency-ms", "300", "--jitter-ms", "150"]
    )
    with EmbeddedCluster(simulator=needs_simulator, simulator_args=sim_args, store=store) as c:
        for job_id in c.leftovers[:LEFTOVERS_SAID]:
            sys.stderr.write(f"cancelled job {job_id}, left unfinished by an earlier run\n")
        if len(c.leftovers) > LEFTOVERS_SAID:  # a batch's: said once, not 500 times
            more = len(c.leftovers) - LEFTOVERS_SAID
            sys.stderr.write(f"cancelled {more} more jobs left unfinished by an earlier run\n")
        yield c.redis_url


@contextlib.contextmanager
def cluster_for(args: argparse.Namespace, plan: JobPlan) -> Iterator[str]:
    """The cluster a plan needs: the configured one, or an embedded one."""
    from vpsweb.config import load_config

    with cluster(args, needs_simulator(load_config(), plan)) as url:
        yield url
