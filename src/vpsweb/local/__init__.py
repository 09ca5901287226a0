"""Launching the local processes vpsweb needs: redis-server, celery workers, the simulator.

Embedded mode, the tests and the benchmarks all start the real programs through
this package, so all three run the same thing the same way.
"""
