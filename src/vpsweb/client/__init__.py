"""The Python clients: ``Client``/``Job`` (sync) and ``AsyncClient``/``AsyncJob``.

``from vpsweb import Client, AsyncClient`` is the public spelling; this package
holds the implementations (``sync``, ``aio``) and batch planning (``batch``).
"""

from vpsweb.client.aio import AsyncClient, AsyncJob
from vpsweb.client.sync import Client, Job

__all__ = ["AsyncClient", "AsyncJob", "Client", "Job"]
