"""The ``celery -A`` target of the raw-canvas benchmark (vpsweb.bench.raw_canvas).

A Celery worker imports its app, so this module builds one at import, from the store
URL (and, for the variant with requests, the simulator's) the bench puts in the
worker's environment; nothing else imports it (without the URL, as when the
architecture tests import every module, the app is left bare).
"""

from __future__ import annotations

import os

from celery import Celery

from vpsweb import settings
from vpsweb.bench.raw_canvas import make_app

_url = settings.redis_url()
_llm = os.environ.get(settings.SIMULATOR_URL_ENV)
app = make_app(_url, _llm) if _url else Celery("raw_canvas")
