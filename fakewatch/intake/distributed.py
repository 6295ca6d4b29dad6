"""The distributed-mode dispatcher: committed ids go to the Celery workers by task name, in batches of
``task_batch``. A broker that does not answer leaves the rows pending; the sweep queues them again.

Importing this module imports neither Celery nor TensorFlow (Celery is imported when the sender is built).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from fakewatch.broker import send_retry_policy, sender
from fakewatch.config import Settings
from fakewatch.db.session import Database
from fakewatch.errors import QueueError
from fakewatch.queues import CLASSIFY_TASK
from fakewatch.redact import mask_url

log = logging.getLogger(__name__)


class QueueDispatcher:
    """Distributed-mode dispatcher: sends committed ids in batches of ``task_batch`` to the workers."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.app = sender(settings)
        self.sent = 0
        self.closing: list[Callable[[], None]] = []  # run by close()
        self.sweeping: list[Callable[[], object]] = []  # run by sweep() after the images (verdict actions)
        self.failures = 0  # sends refused in a row
        self.retry_at = 0.0  # monotonic time before which a down broker is not tried again

    # Intake stamps the rows it records as queued in the same write, since it sends them right after the
    # commit; should the send fail, the stamp is cleared again, so the sweeper picks them up at once.
    stamps_on_record = True
    unsettled: frozenset[int] = frozenset()  # a sent id is the workers' business: nothing waits here

    @contextmanager
    def overlapping(self) -> Iterator[None]:
        yield  # sending is already asynchronous

    def settle(self) -> None:
        pass

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        """Queue ``ids`` (already committed as pending); raises :class:`QueueError` if the broker is down.
        ``stamped``: their ``queued_at`` was set when they were recorded (else it is set here, once sent)."""
        from kombu.exceptions import OperationalError as BrokerError

        from fakewatch.db import recording

        if time.monotonic() < self.retry_at:
            self._unstamp(ids if stamped else [])
            raise QueueError(f"the broker at {mask_url(self.settings.broker_url)} was unreachable moments ago; "
                             f"{len(ids)} images stay pending and are queued again by the next sweep")
        for start in range(0, len(ids), self.settings.task_batch):
            batch = ids[start:start + self.settings.task_batch]
            try:
                self.app.send_task(CLASSIFY_TASK, args=[batch], queue=self.settings.queue,
                                   retry=True, retry_policy=send_retry_policy(self.settings))
            except BrokerError as exc:
                # the rows stay pending in the database; the sweeper sends them again later
                self.failures += 1
                self.retry_at = time.monotonic() + self.settings.retry_delay(self.failures)
                self._unstamp(ids[start:] if stamped else [])
                raise QueueError(f"cannot reach the broker at {mask_url(self.settings.broker_url)}: {exc}; the images "
                                 f"stay pending and are queued again by the next sweep") from exc
            self.failures = 0
            if not stamped:
                with self.database.session() as session, session.begin():
                    recording.mark_queued(session, batch)
            self.sent += len(batch)

    def _unstamp(self, ids: list[int]) -> None:
        """Clear the queued stamp of rows recorded for sending that were not sent (best effort: a row left
        stamped is still swept, only ``sweep_after`` later)."""
        from sqlalchemy.exc import SQLAlchemyError

        from fakewatch.db import recording

        if not ids:
            return
        try:
            with self.database.session() as session, session.begin():
                recording.mark_queued(session, ids, sent=False)
        except SQLAlchemyError as exc:
            log.warning("could not clear the queued stamp of %d unsent images: %s", len(ids), exc)

    def sweep(self) -> int:
        """Re-send images pending for longer than ``sweep_after`` seconds since they were queued; then the
        ``sweeping`` steps (verdict actions left unfinished are queued again once)."""
        from fakewatch.db import recording
        from fakewatch.db.common import utcnow

        cutoff = utcnow() - timedelta(seconds=self.settings.sweep_after)
        with self.database.session() as session:
            ids = recording.pending_ids(session, older_than=cutoff)
        if ids:
            log.info("sweeper: re-queueing %d images pending since before %s", len(ids), cutoff.isoformat())
            self.submit(ids)
        for step in self.sweeping:
            step()
        return len(ids)

    def close(self) -> None:
        for step in self.closing:
            step()
        self.app.close()
