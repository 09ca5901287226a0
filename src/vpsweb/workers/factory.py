"""Building the Celery app (vpsweb.workers.app holds the one `celery -A` loads).

Nothing here runs at import. Clients never need it: they only write to the
state store, and workers' dispatchers send the canvases.

Settings that matter and why:
* JSON only, in and out: nothing crosses the broker that a non-Python tool
  cannot read, and nothing that pickle could turn into code.
* acks_late + prefetch 1 + reject_on_worker_lost: a message leaves the broker
  only after its task finished, so a killed worker's steps are delivered again.
* visibility_timeout above the longest task including all its retries: Redis
  redelivers an unacknowledged message after it, even to a healthy worker.
* threads pool: LLM calls are I/O-bound, so one process holds many in flight.
  That pool enforces no time limits; the LLM client's timeout is the guard.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

from celery import Celery, bootsteps
from kombu import Queue

from vpsweb import settings
from vpsweb.config import AppConfig, load_config

DEFAULT_CONCURRENCY = 32


def visibility_timeout_s(cfg: AppConfig) -> int:
    """Longest possible task (every step's timeout x retries x parse attempts) plus margin."""
    parse_attempts = cfg.pipeline.parse_retries + 1
    judge_attempts = cfg.pipeline.evaluation.judge_retries + 1
    longest = 0.0
    for mode in cfg.pipeline.modes.values():
        for step in mode.steps.values():
            per_call = step.timeout_s * (step.retries + 1) + 60 * step.retries
            longest = max(longest, per_call * max(parse_attempts, judge_attempts))
    return int(max(3600, longest * 1.25))


def task_routes(cfg: AppConfig) -> dict[str, dict[str, str]]:
    from vpsweb.stages.table import FINALIZE_TASK, STAGES

    routing = cfg.routing()
    routes = {s.task_name: {"queue": routing[s.name]} for s in STAGES}
    routes[FINALIZE_TASK] = {"queue": routing["finalize"]}
    return routes


def celery_settings(store_url: str, broker_url: str, cfg: AppConfig) -> dict[str, Any]:
    transport = {"visibility_timeout": visibility_timeout_s(cfg)}
    queues = cfg.queues()
    return {
        "broker_url": broker_url,
        "result_backend": store_url,
        "vpsweb_store_url": store_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "result_expires": cfg.pipeline.retention_s,
        "worker_pool": "threads",
        "worker_concurrency": int(
            os.environ.get(settings.WORKER_CONCURRENCY_ENV) or DEFAULT_CONCURRENCY
        ),
        "task_queues": [Queue(q) for q in queues],
        "task_default_queue": queues[0],
        "task_routes": task_routes(cfg),
        "task_track_started": False,  # Flower learns "started" from events
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


class DispatcherStep(bootsteps.StartStopStep):
    """Runs the job dispatcher in a thread of every worker process (see
    vpsweb.orchestrator.dispatcher); it stops with the worker."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.dispatcher: Any = None
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        from vpsweb.orchestrator.dispatcher import Dispatcher
        from vpsweb.orchestrator.execution import services

        app = parent.app
        self.dispatcher = Dispatcher(
            app=app, services=services(app.conf.vpsweb_store_url), consumer=parent.hostname
        )
        self.thread = threading.Thread(
            target=self.dispatcher.run, name="vpsweb-dispatcher", daemon=True
        )
        self.thread.start()

    def stop(self, parent: Any) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def create_app(
    store_url: str, broker_url: str | None = None, cfg: AppConfig | None = None
) -> Celery:
    """A configured app (the broker defaults to the state store)."""
    cfg = cfg or load_config()
    app = Celery("vpsweb", include=["vpsweb.tasks.pipeline"])
    app.conf.update(celery_settings(store_url, broker_url or store_url, cfg))
    app.steps["worker"].add(DispatcherStep)
    return app


def app_from_env() -> Celery:
    store = settings.require_redis_url("a vpsweb worker")
    broker = settings.broker_url() or store
    return create_app(store, broker)
