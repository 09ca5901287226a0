"""The Celery side: the app factory, and the app `celery -A vpsweb.workers.app` loads."""
