"""The Python clients: ``Client``/``Job`` (sync) and ``AsyncClient``/``AsyncJob``.

``from vpsweb import Client, AsyncClient`` is the public spelling; this package
holds the implementations (``sync``, ``aio``; batches: ``sync_batch``, ``aio_batch``,
their shared core ``batching`` and planning ``batch_plans``).
"""

from vpsweb.client.aio import AsyncClient, AsyncJob
from vpsweb.client.aio_batch import AsyncBatch
from vpsweb.client.sync import Client, Job
from vpsweb.client.sync_batch import Batch

__all__ = ["AsyncBatch", "AsyncClient", "AsyncJob", "Batch", "Client", "Job"]
