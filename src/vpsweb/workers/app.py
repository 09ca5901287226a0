"""The Celery app: `celery -A vpsweb.workers.app worker` works as Celery users expect.

Settings that matter and why:
* JSON only, in and out: nothing crosses the broker that a non-Python tool
  cannot read, and nothing that pickle could turn into code.
* acks_late + prefetch 1 + reject_on_worker_lost: a message leaves Redis only
  after its task finished, so a killed worker's candidates are delivered again.
* visibility_timeout above the longest task including all its retries: Redis
  redelivers an unacknowledged message after it, even to a healthy worker.
* threads pool: LLM calls are I/O-bound, so one process holds many in flight.
  That pool enforces no time limits; the LLM client's timeout is the guard.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu import Queue

from vpsweb.config import AppConfig, load_config
from vpsweb.config.schema import Routing

REDIS_URL_ENV = "VPSWEB_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CONCURRENCY = 32

TASK_ROUTES_BY_STAGE = {
    "vpsweb.candidate": "candidate",
    "vpsweb.evaluate": "evaluation",
    "vpsweb.editor_review": "editor_review",
    "vpsweb.translator_revision": "translator_revision",
    "vpsweb.finalize": "finalize",
}


def redis_url_from_env() -> str:
    return os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)


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


def task_routes(routing: Routing) -> dict[str, dict[str, str]]:
    return {
        name: {"queue": getattr(routing, stage)} for name, stage in TASK_ROUTES_BY_STAGE.items()
    }


def celery_settings(redis_url: str, cfg: AppConfig) -> dict[str, Any]:
    routing = cfg.pipeline.routing
    transport = {"visibility_timeout": visibility_timeout_s(cfg)}
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
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
        "worker_concurrency": DEFAULT_CONCURRENCY,
        "task_queues": [Queue(q) for q in routing.queues()],
        "task_default_queue": routing.candidate,
        "task_routes": task_routes(routing),
        "task_track_started": False,  # Flower learns "started" from events
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def create_app(redis_url: str | None = None, cfg: AppConfig | None = None) -> Celery:
    """A configured app; workers use the module-level ``app``, clients make their own."""
    cfg = cfg or load_config()
    app = Celery("vpsweb", include=["vpsweb.tasks.pipeline"])
    app.conf.update(celery_settings(redis_url or redis_url_from_env(), cfg))
    return app


app = create_app()
