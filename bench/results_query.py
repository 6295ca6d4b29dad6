"""How fast `fakewatch results --label fake --limit 50` answers on a large database.

Fills a SQLite database with N images, N contents and N verdicts (about half fake), then times the
newest-first flagged-fakes query the CLI runs.

    python bench/results_query.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import table
from sqlalchemy import insert

from fakewatch.db.results import ResultFilter, results
from fakewatch.db.session import Database
from fakewatch.db.tables import Content, Image, Verdict


def fill(database: Database, rows: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with database.session() as session, session.begin():
        for offset in range(0, rows, 50_000):
            ids = range(offset + 1, min(rows, offset + 50_000) + 1)
            session.execute(insert(Content), [{"id": i, "sha256": f"{i:064x}", "size": 1000,
                                               "created_at": start} for i in ids])
            session.execute(insert(Image), [{"id": i, "path": f"/archive/{i // 1000:05d}/{i}.jpg", "content_id": i,
                                             "size": 1000, "mtime": 0.0, "status": "done", "first_seen": start,
                                             "last_seen": start} for i in ids])
            session.execute(insert(Verdict), [{"content_id": i, "classifier": "v1",
                                               "label": "fake" if i % 2 else "real", "p_fake": 0.9, "confidence": 0.9,
                                               "threshold": 0.5, "elapsed_ms": 1.0, "host": "h",
                                               "created_at": start + timedelta(seconds=i)} for i in ids])


def timed(database: Database, filters: ResultFilter) -> tuple[float, int]:
    started = time.perf_counter()
    with database.session() as session:
        found = list(results(session, filters))
    return (time.perf_counter() - started) * 1000, len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{Path(folder) / 'big.db'}")
        started = time.perf_counter()
        fill(database, args.rows)
        filled = time.perf_counter() - started
        rows = []
        for name, filters in (("--label fake --limit 50", ResultFilter(label="fake", limit=50)),
                              ("--limit 50", ResultFilter(limit=50)),
                              ("--label fake --since 1h --limit 50",
                               ResultFilter(label="fake", since=datetime(2026, 1, 12, tzinfo=UTC), limit=50))):
            timed(database, filters)  # warm the page cache
            milliseconds, count = timed(database, filters)
            rows.append([f"fakewatch results {name}", count, f"{milliseconds:,.1f} ms"])
    table(f"Result queries on SQLite with {args.rows:,} images and verdicts (filled in {filled:.0f} s)",
          ["query", "rows", "time"], rows)


if __name__ == "__main__":
    main()
