"""The hot statements of the scan and the worker, run two ways on PostgreSQL: as text compiled once and
sent through psycopg (``Prepared.by_driver``) and as plain SQLAlchemy Core (``connection.execute`` of the
same statement object each call, so SQLAlchemy's compiled cache serves it); SQLite runs plain SQLAlchemy
only. Microseconds per call for a batch of ids, paths or digests; ``Prepared(..., driver=True)`` marks
the statements whose ratio justified the driver path.

Fills a database with N images, contents and verdicts (bench/results_query.py's fill). SQLite always;
PostgreSQL when it is reachable (a throwaway database).

    python bench/statements.py [--rows 20000] [--batch 100] [--calls 300] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import ROOT, table
from results_query import database_for, fill

sys.path.insert(0, str(ROOT))
from fakewatch.classify import runtime  # noqa: E402
from fakewatch.db import evidence, recording, results, verdicts  # noqa: E402
from fakewatch.db.common import Prepared  # noqa: E402
from fakewatch.db.session import Database  # noqa: E402

MOMENT = datetime(2026, 6, 1, tzinfo=UTC)


def statements(rows: int, batch: int) -> list[tuple[str, Prepared, dict[str, Any]]]:
    """(name, statement, parameters) for each hot statement, on a batch spread over the table."""
    step = max(1, rows // batch)
    ids = [1 + index * step for index in range(batch)]
    return [
        ("recording: content ids by digest", recording._CONTENT_IDS, {"digests": [f"{i:064x}" for i in ids]}),
        ("recording: images by path", recording._RECORDED,
         {"paths": [f"/archive/{i // 1000:05d}/{i}.jpg" for i in ids]}),
        ("worker: chunk images", runtime._CHUNK_IMAGES, {"ids": ids, "statuses": ["pending", "done"]}),
        ("worker: classified contents", verdicts._CLASSIFIED, {"contents": ids, "classifiers": ["bench"]}),
        ("worker: verdict times", verdicts._VERDICT_TIMES, {"contents": ids}),
        ("worker: set status (update)", verdicts._SET_STATUS,
         {"ids": ids, "status": "done", "error_kind": None, "error_message": None, "warnings": None,
          "classified_at": MOMENT}),
        ("worker: date copies (update)", verdicts._DATE_COPIES, {"contents": ids, "moment": MOMENT}),
        ("evidence: versions", evidence._EVIDENCE_VERSIONS, {"ids": ids}),
        ("evidence: proofs", evidence._PROOFS, {"ids": ids}),
        ("scan: outcome counts", results._OUTCOME_COUNTS, {"ids": ids}),
        ("scan: error ids", results._ERROR_IDS, {"ids": ids}),
    ]


def _round(database: Database, run: Callable[[Any], Any], calls: int) -> float:
    """Seconds for ``calls`` calls in one transaction, rolled back (updates leave nothing behind)."""
    with database.session() as session:
        session.begin()
        run(session)  # the first call compiles: not timed
        started = time.perf_counter()
        for _ in range(calls):
            run(session)
        elapsed = time.perf_counter() - started
        session.rollback()
    return elapsed


def _rows(result: Any) -> Any:
    return result.all() if result.returns_rows else None


def measure(database: Database, rows: int, batch: int, calls: int) -> list[list[object]]:
    """Microseconds per call each way, the best of three rounds taken in turn (hand, plain, hand, ...)."""
    found = []
    dialect = database.dialect
    for name, prepared, params in statements(rows, batch):
        plain = prepared.statement(dialect)
        ways: dict[str, Callable[[Any], Any]] = {
            "hand": lambda session, prepared=prepared, params=params: _rows(prepared.by_driver(session, **params)),
            "plain": lambda session, plain=plain, params=params: _rows(session.connection().execute(plain, params)),
        }
        if dialect != "postgresql":
            del ways["hand"]
        best = {way: float("inf") for way in ways}
        for _ in range(3):
            for way, run in ways.items():
                best[way] = min(best[way], _round(database, run, calls))
        plain_us = best["plain"] / calls * 1e6
        if "hand" not in best:
            found.append([dialect, name, "-", f"{plain_us:,.0f}", "-", "-"])
            continue
        hand_us = best["hand"] / calls * 1e6
        found.append([dialect, name, f"{hand_us:,.0f}", f"{plain_us:,.0f}", f"{plain_us / hand_us:.2f}x",
                      "yes" if prepared.driver else "no"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    found: list[list[object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.databases.split(","):
            with database_for(kind, Path(folder)) as database:
                if database is None:
                    print(f"{kind}: not reachable, skipped")
                    continue
                fill(database, args.rows)
                found += measure(database, args.rows, args.batch, args.calls)
    table(f"hot statements, {args.batch} keys a call, {args.rows:,} rows: microseconds per call",
          ["database", "statement", "driver path", "SQLAlchemy", "SQLAlchemy / driver", "kept"], found)


if __name__ == "__main__":
    main()
