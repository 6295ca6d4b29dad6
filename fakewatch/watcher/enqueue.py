"""Distributed-mode dispatch: send image ids to the queue by task name, and re-send lost ones.

The watcher side never imports the worker package or TensorFlow; it only knows the task's name.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError

from fakewatch.config import Settings
from fakewatch.db import queries
from fakewatch.db.session import Database
from fakewatch.errors import QueueError

log = logging.getLogger(__name__)
CLASSIFY_TASK = "fakewatch.classify"


def sender(settings: Settings) -> Celery:
    app = Celery("fakewatch-sender", broker=settings.broker_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True,
                    broker_transport_options={"visibility_timeout": settings.visibility_timeout})
    return app


class QueueDispatcher:
    """Sends ids in batches of ``task_batch`` to the classification queue (after the rows are committed)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.app = sender(settings)
        self.sent = 0

    def submit(self, ids: list[int], force: bool = False) -> None:
        for start in range(0, len(ids), self.settings.task_batch):
            batch = ids[start:start + self.settings.task_batch]
            try:
                self.app.send_task(CLASSIFY_TASK, args=[batch], queue=self.settings.queue,
                                   retry=True, retry_policy={"max_retries": 30, "interval_start": 0.5,
                                                             "interval_step": 1, "interval_max": 5})
            except BrokerError as exc:
                # the rows stay pending in the database; the sweeper sends them again later
                raise QueueError(f"cannot reach the broker at {self.settings.broker_url}: {exc}") from exc
            with self.database.session() as session, session.begin():
                queries.mark_queued(session, batch)
            self.sent += len(batch)

    def sweep(self) -> int:
        """Re-send images pending for longer than ``sweep_after`` seconds since they were queued."""
        cutoff = queries.utcnow() - timedelta(seconds=self.settings.sweep_after)
        with self.database.session() as session:
            ids = queries.pending_ids(session, older_than=cutoff)
        if ids:
            log.info("sweeper: re-queueing %d images pending since before %s", len(ids), cutoff.isoformat())
            self.submit(ids)
        return len(ids)
