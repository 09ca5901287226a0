"""The ``celery -A`` target of the raw-canvas benchmark (vpsweb.bench.raw_canvas).

A Celery worker imports its app, so this module builds one at import, from the store
URL the bench puts in the worker's environment; nothing else imports it (without the
URL, as when the architecture tests import every module, the app is left bare).
"""

from __future__ import annotations

from celery import Celery

from vpsweb import settings
from vpsweb.bench.raw_canvas import make_app

_url = settings.redis_url()
app = make_app(_url) if _url else Celery("raw_canvas")
