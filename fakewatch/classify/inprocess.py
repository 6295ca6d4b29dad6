"""The embedded-mode dispatcher: ids submitted by intake are classified here, in this process."""

from __future__ import annotations

from fakewatch.classify.runtime import BatchOutcome, Runtime
from fakewatch.db import recording


class InProcess:
    """Classifies submitted ids at once; :meth:`sweep` finishes images left pending by an earlier run."""

    stamps_on_record = False  # nothing is queued: the ids are classified before submit returns

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outcome = BatchOutcome()
        self.preloaded: dict[str, bytes] = {}  # path -> bytes intake read for the batch it submits

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        self.outcome.add(self.runtime.classify_ids(ids, force, self.preloaded))

    def sweep(self) -> int:
        with self.runtime.database.session() as session:
            ids = recording.pending_ids(session)
        if ids:
            self.submit(ids)
        return len(ids)

    def close(self) -> None:
        self.runtime.close()
