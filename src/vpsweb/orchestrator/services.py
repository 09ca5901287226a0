"""What a worker process shares between its threads while it runs steps."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from vpsweb.config import AppConfig, load_config
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.orchestrator.keeper import Keeper
from vpsweb.orchestrator.watch import JobWatch
from vpsweb.storage import Storage, connect

STORE_RETRIES = 30  # commands retried with back-off: rides out a Redis restart


class Delivery(Protocol):
    """The broker message a task is working on (Celery side: kept invisible while the
    step runs, so that a healthy long step is not delivered again)."""

    def renew(self) -> bool: ...


@dataclass(frozen=True)
class Services:
    """What a worker process shares between its threads: the store, its own config
    (prompts, routing), one LLM client, the keeper of its leases, and the watch on
    its steps' jobs (their ends and quorum deadlines, for the checks during calls)."""

    storage: Storage
    config: AppConfig
    llm: LLMClient
    keeper: Keeper = field(default_factory=Keeper)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    watch: JobWatch = field(init=False)

    def __post_init__(self) -> None:
        storage = self.storage
        object.__setattr__(self, "watch", JobWatch(storage.signals, storage.progress))


_services_lock = threading.Lock()


@lru_cache(maxsize=4)
def services(store_url: str) -> Services:
    with _services_lock:
        cfg = load_config()
        storage = connect(store_url, retries=STORE_RETRIES)
        return Services(
            storage=storage,
            config=cfg,
            llm=OpenAICompatibleClient(models=cfg.models, quotas=storage.quotas),
        )
