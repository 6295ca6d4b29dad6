"""Turning recorded images into verdicts, in both modes.

    runtime    read pending rows, decode each content once, classify in batches, write verdicts
    inprocess  the embedded-mode dispatcher: classify submitted ids right here
    scan       the one-shot scan: walk, record, classify (here or through the queue), summarise

Celery workers (:mod:`fakewatch.worker`) run the same :class:`~fakewatch.classify.runtime.Runtime`.
"""
