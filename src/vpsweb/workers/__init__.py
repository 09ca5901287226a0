"""Celery app, queues and worker launch. `celery -A vpsweb.workers.app worker` starts one."""
