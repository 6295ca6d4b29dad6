"""Where recorded ids go: the :class:`Dispatcher` interface intake hands pending image ids to.

    embedded     :class:`~fakewatch.intake.embedded.InProcess` classifies them in this process
    distributed  :class:`~fakewatch.intake.distributed.QueueDispatcher` queues them for Celery workers

Intake knows the dispatcher only by this interface: it never imports the classifier or the queue.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Dispatcher(Protocol):
    """Where pending image ids go: classified in-process (embedded) or queued (distributed)."""

    # True: intake records the rows it submits right after the commit already stamped as queued
    stamps_on_record: bool

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        """Classify or queue committed ids; may raise :class:`~fakewatch.errors.QueueError` (the rows stay pending).
        ``stamped``: intake recorded them with ``queued_at`` already set."""
        ...

    @property
    def unsettled(self) -> frozenset[int]:
        """Submitted ids whose outcome is not final yet here (inside :meth:`overlapping`)."""
        ...

    def overlapping(self) -> AbstractContextManager[None]:
        """A stretch in which :meth:`submit` may return before its ids are settled (a one-shot scan);
        everything is settled when it ends."""
        ...

    def settle(self) -> None:
        """Finish whatever :meth:`submit` left in flight."""
        ...

    def sweep(self) -> int:
        """Dispatch again images left pending (lost message, killed worker, earlier crash); returns how many."""
        ...

    def close(self) -> None: ...
