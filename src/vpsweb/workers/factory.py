"""Building the Celery app (vpsweb.workers.app holds the one `celery -A` loads).

Nothing here runs at import. Clients never need it: they only write to the
state store, and workers' dispatchers send the canvases.

Settings that matter and why:
* JSON only, in and out: nothing crosses the broker that a non-Python tool
  cannot read, and nothing that pickle could turn into code.
* acks_late + prefetch 1 + reject_on_worker_lost: a message leaves the broker
  only after its task finished, so a killed worker's steps are delivered again
  (how fast depends on the broker: vpsweb.workers.broker).
* threads pool: LLM calls are I/O-bound, so one process holds many in flight.
  That pool enforces no time limits; the LLM client's timeout is the guard.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

from celery import Celery, bootsteps

from vpsweb import settings
from vpsweb.config import AppConfig, load_config
from vpsweb.errors import SettingsError
from vpsweb.redis_target import CLUSTER_SCHEME
from vpsweb.workers import broker, results

DEFAULT_CONCURRENCY = 32


def task_routes(cfg: AppConfig) -> dict[str, dict[str, str]]:
    from vpsweb.stages.table import STAGES
    from vpsweb.workers.routing import FINALIZE_TASK, TASK_NAMES

    routing = cfg.routing()
    routes = {TASK_NAMES[s.name]: {"queue": routing[s.name]} for s in STAGES}
    routes[FINALIZE_TASK] = {"queue": routing["finalize"]}
    return routes


def celery_settings(store_url: str, broker_url: str, cfg: AppConfig) -> dict[str, Any]:
    queues = cfg.queues()
    return {
        **broker.celery_settings(broker_url, cfg),
        **results.backend_settings(store_url, broker_url),
        "vpsweb_store_url": store_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A lost broker connection must not kill running steps: their calls are paid
        # for and their outputs are stored; a second delivery waits on the lease.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 30,
        "result_expires": cfg.pipeline.retention_s,
        "worker_pool": "threads",
        "worker_concurrency": int(
            os.environ.get(settings.WORKER_CONCURRENCY_ENV) or DEFAULT_CONCURRENCY
        ),
        "task_default_queue": queues[0],
        "task_routes": task_routes(cfg),
        "task_track_started": False,  # Flower learns "started" from events
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


class HousekeepingStep(bootsteps.StartStopStep):
    """Runs the job dispatcher, the sweeper and the heartbeat in threads of every worker
    process (vpsweb.orchestrator.dispatcher, .sweeper, .heartbeat); they stop with it."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stops: list[threading.Event] = []
        self.threads: list[threading.Thread] = []

    def start(self, parent: Any) -> None:
        from vpsweb.llm.client import OpenAICompatibleClient
        from vpsweb.orchestrator.dispatcher import Dispatcher
        from vpsweb.orchestrator.execution import services
        from vpsweb.orchestrator.heartbeat import Heartbeat
        from vpsweb.orchestrator.sweeper import Sweeper

        app = parent.app
        svc = services(app.conf.vpsweb_store_url)
        if isinstance(svc.llm, OpenAICompatibleClient):
            svc.llm.sized_for(parent.concurrency)
        dispatcher = Dispatcher(app=app, services=svc, consumer=parent.hostname)
        sweeper = Sweeper(storage=svc.storage, owner=parent.hostname)
        selected = app.amqp.queues.consume_from or app.amqp.queues  # -Q, else all
        heartbeat = Heartbeat(storage=svc.storage, worker=parent.hostname, queues=list(selected))
        parts = (("dispatcher", dispatcher), ("sweeper", sweeper), ("heartbeat", heartbeat))
        for name, part in parts:
            thread = threading.Thread(target=part.run, name=f"vpsweb-{name}", daemon=True)
            self.stops.append(part.stop)
            self.threads.append(thread)
            thread.start()

    def stop(self, parent: Any) -> None:
        for stop in self.stops:
            stop.set()
        for thread in self.threads:
            thread.join(timeout=5)


def create_app(
    store_url: str, broker_url: str | None = None, cfg: AppConfig | None = None
) -> Celery:
    """A configured app (the broker defaults to the state store, unless that is a Redis
    Cluster: a SettingsError of one line, as ``settings.broker_url``)."""
    cfg = cfg or load_config()
    if (broker_url or store_url).startswith(CLUSTER_SCHEME + ":"):
        raise SettingsError(settings.CLUSTER_BROKER_ERROR)
    app = Celery("vpsweb", include=["vpsweb.tasks.pipeline"])
    app.conf.update(celery_settings(store_url, broker_url or store_url, cfg))
    app.steps["worker"].add(HousekeepingStep)
    return app


def app_from_env() -> Celery:
    store = settings.require_redis_url("a vpsweb worker")
    broker = settings.broker_url() or store
    return create_app(store, broker)
