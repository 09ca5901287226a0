"""vpsweb: distributed poetry translation with LLMs.

    from vpsweb import Client
    with Client(redis_url="redis://localhost:6379/0") as client:
        job = client.submit(poem=..., source_lang="en", target_lang="zh-CN")
        output = job.result(timeout=600)

Importing this package reads no config, builds no Celery app and opens no
connection: the names below are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("vpsweb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

_EXPORTS = {
    "Client": "vpsweb.client.sync",
    "Job": "vpsweb.client.sync",
    "AsyncClient": "vpsweb.client.aio",
    "AsyncJob": "vpsweb.client.aio",
    "Batch": "vpsweb.client.sync_batch",
    "AsyncBatch": "vpsweb.client.aio_batch",
    "BatchProgress": "vpsweb.domain.batch",
    "BatchRecord": "vpsweb.domain.batch",
    "BatchNotFound": "vpsweb.errors",
    "AnswerRefused": "vpsweb.errors",
    "AnswerRejected": "vpsweb.errors",
    "TranslationOutput": "vpsweb.domain.result",
    "Glossary": "vpsweb.domain.glossary",
    "GlossaryTerm": "vpsweb.domain.glossary",
    "read_glossary": "vpsweb.files.glossary_file",
    "ProgressEvent": "vpsweb.domain.progress",
    "VpswebError": "vpsweb.errors",
    "ConfigError": "vpsweb.errors",
    "RequestInvalid": "vpsweb.errors",
    "JobNotFound": "vpsweb.errors",
    "JobError": "vpsweb.errors",
    "JobFailed": "vpsweb.errors",
    "JobCancelled": "vpsweb.errors",
    "ResultExpired": "vpsweb.errors",
    "StoreUnavailable": "vpsweb.errors",
    "SettingsError": "vpsweb.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover - static checkers see the lazy names
    from vpsweb.client.aio import AsyncClient as AsyncClient
    from vpsweb.client.aio import AsyncJob as AsyncJob
    from vpsweb.client.aio_batch import AsyncBatch as AsyncBatch
    from vpsweb.client.sync import Client as Client
    from vpsweb.client.sync import Job as Job
    from vpsweb.client.sync_batch import Batch as Batch
    from vpsweb.domain.batch import BatchProgress as BatchProgress
    from vpsweb.domain.batch import BatchRecord as BatchRecord
    from vpsweb.domain.glossary import Glossary as Glossary
    from vpsweb.domain.glossary import GlossaryTerm as GlossaryTerm
    from vpsweb.domain.progress import ProgressEvent as ProgressEvent
    from vpsweb.domain.result import TranslationOutput as TranslationOutput
    from vpsweb.errors import AnswerRefused as AnswerRefused
    from vpsweb.errors import AnswerRejected as AnswerRejected
    from vpsweb.errors import BatchNotFound as BatchNotFound
    from vpsweb.errors import ConfigError as ConfigError
    from vpsweb.errors import JobCancelled as JobCancelled
    from vpsweb.errors import JobError as JobError
    from vpsweb.errors import JobFailed as JobFailed
    from vpsweb.errors import JobNotFound as JobNotFound
    from vpsweb.errors import RequestInvalid as RequestInvalid
    from vpsweb.errors import ResultExpired as ResultExpired
    from vpsweb.errors import SettingsError as SettingsError
    from vpsweb.errors import StoreUnavailable as StoreUnavailable
    from vpsweb.errors import VpswebError as VpswebError
    from vpsweb.files.glossary_file import read_glossary as read_glossary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vpsweb' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
