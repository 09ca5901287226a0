"""Orchestration: the canvas, a job run and step execution, the dispatcher, the sweeper,
and how a job ends (``lifecycle``, shared with the clients). Importing this package
loads nothing: the Celery-free modules (``lifecycle``, ``summaries``) stay light."""
