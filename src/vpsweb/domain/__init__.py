"""The domain core: requests, plans, prompts, parsing, selection, results.

Pure: nothing here imports Celery, kombu or Redis (an architecture test checks),
so every module runs the same in a worker, in the in-process runner and in a
unit test. The stages (``vpsweb.stages``) belong to the core too.
"""
