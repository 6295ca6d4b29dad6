"""The embedded-mode dispatcher: ids submitted by intake are classified here, in this process, by the
classification runtime (:mod:`fakewatch.classify.runtime`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fakewatch.classify.runtime import BatchOutcome, Runtime, Started
from fakewatch.db import recording

# In a one-shot scan, up to IN_FLIGHT chunks wait for their verdicts: while the oldest is written, the
# classifier already holds the next, so its lanes never wait for this thread between chunks. Chunks of
# large crops are written sooner, so at most about QUEUED_VALUES crop values wait in memory.
IN_FLIGHT = 2
QUEUED_VALUES = 64 * 1024 * 1024


class InProcess:
    """Classifies submitted ids at once; :meth:`sweep` finishes images left pending by an earlier run.

    Inside :meth:`overlapping` (a one-shot scan) a submitted chunk is decoded and handed to the classifier,
    and its verdicts are written when the chunk after next arrives (or at :meth:`settle`): recording and
    decoding chunk N+2 and writing chunk N run while the classifier works on chunk N+1. Elsewhere (the
    watcher, re-classification) each submit returns with its verdicts written."""

    stamps_on_record = False  # nothing is queued: the ids are classified before submit returns

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outcome = BatchOutcome()
        self.preloaded: dict[str, bytes] = {}  # path -> bytes intake read for the batch it submits
        self._overlap = False
        self._in_flight: list[Started] = []

    @property
    def unsettled(self) -> frozenset[int]:
        """Ids submitted whose verdicts are not written yet (only inside :meth:`overlapping`)."""
        return frozenset(image_id for started in self._in_flight for image_id in started.ids)

    @contextmanager
    def overlapping(self) -> Iterator[None]:
        """Let each chunk's inference run while the caller prepares the next; settles on the way out."""
        self._overlap = True
        try:
            yield
        finally:
            self._overlap = False
            self.settle()

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        size = self.runtime.settings.batch_size
        for start in range(0, len(ids), size):
            started = self.runtime.begin(ids[start:start + size], force, self.preloaded)
            # the oldest chunks: their inference ran while this one was read and decoded
            while self._in_flight and (len(self._in_flight) >= IN_FLIGHT or started.values + sum(
                    waiting.values for waiting in self._in_flight) > QUEUED_VALUES):
                self.outcome.add(self.runtime.finish(self._in_flight.pop(0)))
            self._in_flight.append(started)
            if not self._overlap:
                self.settle()

    def settle(self) -> None:
        """Write the verdicts of every chunk still in flight."""
        while self._in_flight:
            self.outcome.add(self.runtime.finish(self._in_flight.pop(0)))

    def sweep(self) -> int:
        """Classify images left pending; then retry, once, verdict actions an earlier run left unfinished."""
        with self.runtime.database.session() as session:
            ids = recording.pending_ids(session)
        if ids:
            self.submit(ids)
        self.runtime.actions.sweep()
        return len(ids)

    def close(self) -> None:
        try:
            self.settle()
        finally:
            self.runtime.close()
