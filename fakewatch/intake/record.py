"""Intake: record files in the database, then hand the pending ids to a dispatcher.

Used by `fakewatch scan` and `enqueue` (:mod:`fakewatch.intake.scan`), by the watcher (events, catch-up and
rescans) and by the web console's uploads. The database row is written and committed before any id is
dispatched, so nothing accepted is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fakewatch.config import Settings
from fakewatch.db import recording
from fakewatch.db.common import utcnow
from fakewatch.db.session import Database
from fakewatch.errors import QueueError
from fakewatch.intake.dispatch import Dispatcher
from fakewatch.intake.files import inspect
from fakewatch.intake.filters import FileFilter
from fakewatch.intake.walk import chunks, walk

log = logging.getLogger(__name__)

KEEP_BYTES = 1 << 20
FIRST_CHUNK = 32  # files in a scan's first chunk; the next ones double up to batch_size


@dataclass
class Intake:
    """Records files and dispatches the ones that need a verdict."""

    settings: Settings
    database: Database
    classifier_version: Callable[[], str | list[str]]
    dispatcher: Dispatcher
    file_filter: FileFilter = field(default_factory=FileFilter)
    # Embedded mode classifies right after recording: it keeps the bytes it hashed (files up to
    # KEEP_BYTES each) so every file is read once. ``recent`` holds them until the dispatch is done.
    keep_bytes: bool = False
    recent: dict[str, bytes] = field(default_factory=dict)
    # Resolved folders (and files named on their own) that symlinks may lead into: set by the scan or the
    # watcher from what it was given (``real_roots``). Empty, or follow_outside_links on: anywhere.
    roots: tuple[str, ...] = ()
    unsent: int = 0  # pending ids the dispatcher could not take (broker down); they stay pending
    # told about images recorded as done at once (content this classifier already judged): verdict actions
    on_done: Callable[[list[int]], None] = lambda ids: None

    def walk(self, paths: Iterable[str | Path]) -> Iterator[str]:
        """Every file under ``paths`` this intake's filter accepts."""
        return walk(paths, self.file_filter)

    def batches(self, paths: Iterable[str | Path]) -> Iterator[list[str]]:
        """:meth:`walk` in lists of ``batch_size``, after a few shorter ones (32, 64, 128 files): the
        classifier gets its first images sooner, while the rest is still being read."""
        return chunks(self.walk(paths), self.settings.batch_size, first=FIRST_CHUNK)

    def record(self, paths: list[str], force: bool = False, stamped: bool = False) -> dict[str, tuple[int, str]]:
        """Record ``paths`` in one transaction; returns path -> (id, status) of the ones recorded. ``stamped``:
        pending rows are stamped as queued now (they are submitted right after the commit)."""
        roots = () if self.settings.follow_outside_links else self.roots
        records = [record for record in (inspect(path, self.settings.max_file_bytes, roots) for path in paths)
                   if record]
        if self.keep_bytes:
            self.recent.update((record.path, record.data) for record in records
                               if record.data is not None and len(record.data) <= KEEP_BYTES)
        queued_at = utcnow() if stamped else None
        with self.database.session() as session, session.begin():
            recorded = recording.record_files(session, records, self.classifier_version(), force, queued_at)
        return recorded

    def process(self, paths: list[str], force: bool = False) -> dict[str, tuple[int, str]]:
        """Record, then dispatch the pending ones (after the commit)."""
        stamped = self.dispatcher.stamps_on_record
        try:
            recorded = self.record(paths, force, stamped)
            pending = [image_id for image_id, status in recorded.values() if status == "pending" or force]
            self.on_done(sorted(image_id for image_id, status in recorded.values() if status == "done" and not force))
            if pending:
                try:
                    self.dispatcher.submit(sorted(pending), force, stamped)
                except QueueError as exc:
                    # recorded rows stay pending: the sweeper (or the next start) queues them again
                    self.unsent += len(pending)
                    log.warning("%s; %d images stay pending", exc, len(pending))
        finally:
            self.recent.clear()
        return recorded
