"""The console's counts done by the database: verdicts per minute and the latency histogram, on SQLite and
PostgreSQL, against the same counts made in Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fakewatch.db.session import Database
from fakewatch.db.tables import Content, Verdict
from fakewatch.db.throughput import latency, verdicts_each_minute
from tests.integration.services import throwaway_postgres

NOW = datetime(2026, 11, 2, 12, 0, 30, 250000, tzinfo=UTC)
# seconds before NOW: inside the hour (at minute edges too), at its very start, and before it
AGES = [0.1, 29.9, 30.25, 59, 61, 600.5, 1799.99, 3540, 3599.9, 3600, 3600.5, 7200]
ELAPSED_MS = [0.5, 1, 3, 10, 24, 60, 99, 250, 700, 1000, 3000, 12.5]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'throughput.db'}")
        return
    with throwaway_postgres() as url:
        database = Database(url, auto_upgrade=True)
        yield database
        database.dispose()


def test_verdicts_each_minute_and_latency_match_counting_in_python(database: Database) -> None:
    with database.session() as session, session.begin():
        for index, (age, elapsed) in enumerate(zip(AGES, ELAPSED_MS, strict=True), start=1):
            session.add(Content(id=index, sha256=f"{index:064x}", size=1, created_at=NOW))
            session.flush()
            session.add(Verdict(content_id=index, classifier="v1", label="fake", p_fake=0.9, confidence=0.9,
                                threshold=0.5, elapsed_ms=elapsed, host="h", reason="classifier",
                                created_at=NOW - timedelta(seconds=age)))
    since = NOW - timedelta(minutes=60)
    expected = [0] * 60
    for age in AGES:
        moment = NOW - timedelta(seconds=age)
        if moment >= since:
            expected[int((moment - since).total_seconds() // 60)] += 1
    bounds = (1, 10, 100, 1000)
    with database.session() as session:
        assert verdicts_each_minute(session, 60, now=NOW) == expected
        timing = latency(session, bounds)
    assert timing.at_most == [sum(elapsed <= bound for elapsed in ELAPSED_MS) for bound in bounds]
    assert (timing.count, timing.sum_ms) == (len(ELAPSED_MS), pytest.approx(sum(ELAPSED_MS)))


def test_an_empty_database_counts_nothing(database: Database) -> None:
    with database.session() as session:
        assert verdicts_each_minute(session, 5) == [0] * 5
        assert latency(session, (1, 2)) == latency(session, (1, 2)).__class__([0, 0], 0, 0.0)
