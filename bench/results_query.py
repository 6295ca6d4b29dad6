"""How fast `fakewatch results` answers on a large database, before and after the classified_at index.

Fills a database with N images, N contents and N verdicts (about half fake; a few unclassified images),
then times the queries the CLI runs, newest verdict first: "before" sorts by the verdict's time as
earlier versions did; "after" is the current query, which walks the (classified_at, id) index, and its
next page (`--after`); then the label counts (`GET /api/v1/results/counts`, with and without a status) and
`fakewatch stats`, which read the counts the database keeps. SQLite always; PostgreSQL when it is reachable
(a throwaway database).

    python bench/results_query.py [--rows 1000000] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import ROOT, table
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(ROOT))
from fakewatch.db.results import ResultFilter, label_counts, result_row, results, results_query  # noqa: E402
from fakewatch.db.results import stats as result_stats  # noqa: E402
from fakewatch.db.session import Database, make_engine, upgrade  # noqa: E402
from fakewatch.db.tables import Content, Image, Verdict  # noqa: E402

UNCLASSIFIED = 1000  # images recorded but not classified yet: they sort last


def _insert(session: Session, table: Any, rows: list[dict[str, Any]], chunk: int = 2000) -> None:
    """On PostgreSQL, multi-row INSERT statements, as the scan's and the worker's writes are: the statement
    triggers that keep the counts then run once per statement, not once per row as with executemany."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    for start in range(0, len(rows), chunk):
        session.execute(insert(table).values(rows[start:start + chunk]))


def fill(database: Database, rows: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with database.session() as session, session.begin():
        for offset in range(0, rows, 50_000):
            ids = range(offset + 1, min(rows, offset + 50_000) + 1)
            _insert(session, Content, [{"id": i, "sha256": f"{i:064x}", "size": 1000,
                                        "created_at": start} for i in ids])
            classified = [i for i in ids if i <= rows - UNCLASSIFIED]
            _insert(session, Image, [{"id": i, "path": f"/archive/{i // 1000:05d}/{i}.jpg", "content_id": i,
                                      "size": 1000, "mtime": 0.0, "status": "done"
                                      if i <= rows - UNCLASSIFIED else "pending",
                                      "first_seen": start, "last_seen": start,
                                      "classified_at": start + timedelta(seconds=i) if i <= rows - UNCLASSIFIED
                                      else None} for i in ids])
            if classified:
                _insert(session, Verdict, [{"content_id": i, "classifier": "v1",
                                            "label": "fake" if i % 2 else "real", "p_fake": 0.9,
                                            "confidence": 0.9, "threshold": 0.5, "elapsed_ms": 1.0, "host": "h",
                                            "created_at": start + timedelta(seconds=i)} for i in classified])


def timed(database: Database, filters: ResultFilter, before: bool) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    with database.session() as session:
        if before:  # the earlier ordering: always the verdict's own time, which no index serves unfiltered
            query = results_query(filters).order_by(None).order_by(Verdict.created_at.desc().nulls_last(),
                                                                    Image.id.desc())
            found = [result_row(row) for row in session.execute(query)]
        else:
            found = list(results(session, filters))
    return (time.perf_counter() - started) * 1000, found


@contextmanager
def database_for(kind: str, folder: Path) -> Iterator[Database | None]:
    if kind == "sqlite":
        yield Database(f"sqlite:///{folder / 'big.db'}")
        return
    from tests.integration.services import throwaway_postgres

    try:
        with throwaway_postgres() as url:
            upgrade(make_engine(url))
            database = Database(url)
            yield database
            database.dispose()
    except BaseException as exc:  # pytest's skip when PostgreSQL is absent
        if type(exc).__name__ != "Skipped":
            raise
        yield None


def measure(database: Database, rows: int) -> list[list[object]]:
    table_rows: list[list[object]] = []
    first = ResultFilter(limit=50)
    _, page = timed(database, first, before=False)
    queries = [("--limit 50", first, True), ("--limit 50", first, False),
               ("--limit 50 --after ID (page 2)", ResultFilter(limit=50, after=page[-1]["id"]), False),
               ("--limit 50 --after ID (last classified page)",
                ResultFilter(limit=50, after=rows - UNCLASSIFIED - 50 * 10), False),
               ("--label fake --limit 50", ResultFilter(label="fake", limit=50), True),
               ("--label fake --limit 50", ResultFilter(label="fake", limit=50), False),
               ("--label fake --since 1h --limit 50",
                ResultFilter(label="fake", since=datetime(2026, 1, 12, tzinfo=UTC), limit=50), False)]
    for name, filters, before in queries:
        timed(database, filters, before)  # warm the page cache
        milliseconds, found = timed(database, filters, before)
        table_rows.append([f"fakewatch results {name}", "before" if before else "after", len(found),
                           f"{milliseconds:,.1f} ms"])
    counts = [("GET /api/v1/results/counts", lambda session: label_counts(session, ResultFilter())),
              ("GET /api/v1/results/counts?status=done",
               lambda session: label_counts(session, ResultFilter(status="done"))),
              ("fakewatch stats", result_stats)]
    for name, count in counts:
        with database.session() as session:
            count(session)  # warm the page cache
            started = time.perf_counter()
            found = count(session)
            milliseconds = (time.perf_counter() - started) * 1000
        table_rows.append([name, "current", len(found), f"{milliseconds:,.1f} ms"])
    return table_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory() as folder, database_for(kind, Path(folder)) as database:
            if database is None:
                print(f"\n{kind}: not reachable, skipped")
                continue
            started = time.perf_counter()
            fill(database, args.rows)
            if kind == "postgresql":  # what autovacuum does to a table this size soon after it was filled
                with database.session() as session, session.begin():
                    session.execute(text("ANALYZE"))
            filled = time.perf_counter() - started
            table(f"Result queries on {kind} with {args.rows:,} images ({UNCLASSIFIED:,} unclassified) and verdicts "
                  f"(filled in {filled:.0f} s)", ["query", "query as", "rows", "time"], measure(database, args.rows))


if __name__ == "__main__":
    main()
