"""Celery tasks: thin adapters around vpsweb.orchestrator.execution."""
