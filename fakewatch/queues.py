"""The names senders and workers agree on: Celery task names and queue names.

A plain module with no imports, so :mod:`fakewatch.config` (which checks the ``queue`` setting against
:data:`CLASSIFY_QUEUES`) and :mod:`fakewatch.broker` (which sends) both read it without reading each other.
"""

CLASSIFY_TASK = "fakewatch.classify"
REFRESH_TASK = "fakewatch.refresh"
ACT_TASK = "fakewatch.act"  # verdict actions claimed after a verdict committed: [action ids], claim token
CLASSIFY_QUEUES = ("cpu", "gpu")
TRAINING_QUEUE = "training"
ACTIONS_QUEUE = "actions"  # every worker consumes it beside its own queues: a hook never waits behind a backlog
QUEUES = (*CLASSIFY_QUEUES, TRAINING_QUEUE, ACTIONS_QUEUE)
