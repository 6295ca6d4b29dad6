"""One-shot batch scan: walk paths, record in batches, classify (here or through the queue), summarise.

`fakewatch scan` and `fakewatch enqueue` both run :func:`scan`; the mode's dispatcher decides whether
the recorded ids are classified in this process or queued for workers.

Everything runs in one thread: a helper thread recording ahead was measured slower, because file reads in
one thread then wait for the interpreter lock held by the other.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakewatch.db.results import rows_for_ids
from fakewatch.watcher.intake import real_roots

if TYPE_CHECKING:
    from fakewatch.watcher.intake import Intake


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

    def add(self, row: dict[str, Any]) -> None:
        self.files += 1
        self.by_status[row["status"]] += 1
        if row["status"] == "error":
            self.by_error[row["error_kind"] or "error"] += 1
        elif row["label"]:
            self.by_label[row["label"]] += 1


def scan(intake: Intake, paths: Iterable[str | Path], force: bool = False,
         on_rows: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
         on_progress: Callable[[int], None] = lambda done: None) -> ScanSummary:
    """Scan files and folders (recursively), streaming in batches of ``batch_size``."""
    summary = ScanSummary()
    started = time.perf_counter()
    paths = list(paths)
    intake.roots = real_roots(paths)  # symlinks may lead anywhere under what was named, and nowhere else
    for chunk in intake.batches(paths):
        recorded = intake.process(chunk, force)
        ids = [recorded[path][0] for path in chunk if path in recorded]
        with intake.database.session() as session:
            rows = rows_for_ids(session, ids)
        for row in rows:
            summary.add(row)
        on_rows(rows)
        on_progress(len(chunk))
    summary.seconds = time.perf_counter() - started
    return summary

