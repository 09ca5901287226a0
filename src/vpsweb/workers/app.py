"""The worker's Celery app: `celery -A vpsweb.workers.app worker` works as Celery users expect.

The only module that builds an app at import, from VPSWEB_REDIS_URL (the state
store and result backend) and VPSWEB_BROKER_URL (default: the same); it refuses
to guess either, since a silent default would be somebody else's Redis.
"""

from __future__ import annotations

from vpsweb.errors import SettingsError
from vpsweb.workers.factory import app_from_env

try:
    app = app_from_env()
except SettingsError as exc:
    raise SystemExit(f"vpsweb: {exc}") from None
