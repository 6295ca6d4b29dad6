"""One-shot batch scan: walk paths, record in batches, classify (here or through the queue), summarise.

`fakewatch scan` and `fakewatch enqueue` both run :func:`scan`; the mode's dispatcher decides whether
the recorded ids are classified in this process or queued for workers.

In embedded mode the classifier works on one chunk (on its own threads, without the interpreter lock)
while this thread records, reads and decodes the next one and writes the verdicts of the one before.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakewatch.db.results import outcome_counts, rows_for_ids
from fakewatch.intake.walk import real_roots

if TYPE_CHECKING:
    from fakewatch.intake.record import Intake


@dataclass
class ScanSummary:
    files: int = 0
    by_label: Counter[str] = field(default_factory=Counter)
    by_error: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def add(self, status: str, error_kind: str | None, label: str | None, count: int = 1) -> None:
        self.files += count
        self.by_status[status] += count
        if status == "error":
            self.by_error[error_kind or "error"] += count
        elif label:
            self.by_label[label] += count


def scan(intake: Intake, paths: Iterable[str | Path], force: bool = False,
         on_rows: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
         on_progress: Callable[[int], None] = lambda done: None, every_row: bool = True) -> ScanSummary:
    """Scan files and folders (recursively), streaming in batches of ``batch_size``. ``on_rows`` receives
    each batch's public rows; with ``every_row`` False only the rows of files with errors (reading every
    row back costs more than a summary needs)."""
    summary = ScanSummary()
    started = time.perf_counter()
    paths = list(paths)
    intake.roots = real_roots(paths)  # symlinks may lead anywhere under what was named, and nowhere else
    dispatcher = intake.dispatcher
    backlog: list[tuple[list[int], int]] = []  # recorded chunks (ids, files walked) not read back, oldest first

    def read_back(settled: bool) -> None:
        while backlog and (settled or not dispatcher.unsettled.intersection(backlog[0][0])):
            ids, walked = backlog.pop(0)
            with intake.database.session() as session:
                outcomes, rows = _read_back(session, ids, every_row)
            for outcome in outcomes:
                summary.add(*outcome)
            on_rows(rows)
            on_progress(walked)

    # the classifier works on one chunk while the next is recorded and decoded
    with dispatcher.overlapping():
        for chunk in intake.batches(paths):
            recorded = intake.process(chunk, force)
            backlog.append(([recorded[path][0] for path in chunk if path in recorded], len(chunk)))
            read_back(settled=False)
    read_back(settled=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _read_back(session: Any, ids: list[int], every_row: bool) -> tuple[list[tuple[str, str | None, str | None, int]],
                                                                        list[dict[str, Any]]]:
    """How many recorded images have each (status, error kind, label), and the public rows ``on_rows``
    gets: every row, or (``every_row`` False) only those of files with errors, the rest counted by the
    database without building rows."""
    if every_row:
        rows = rows_for_ids(session, ids)
        return [(row["status"], row["error_kind"], row["label"], 1) for row in rows], rows
    counts, failed = outcome_counts(session, ids)
    return counts, rows_for_ids(session, failed) if failed else []
