"""How verdicts arrive: verdicts per minute over a window, and the classify-latency histogram, both counted
by the database (the console's status page and its Prometheus metrics read them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, case, cast, func, select
from sqlalchemy.orm import Session

from fakewatch.db.common import utcnow
from fakewatch.db.tables import Verdict


@dataclass(frozen=True)
class Latency:
    """Verdicts at or under each bound (cumulative, as Prometheus buckets are), all of them, and their total
    classifier time."""

    at_most: list[int]
    count: int
    sum_ms: float


def _minutes_since(session: Session, since: datetime) -> Any:
    """Whole minutes from ``since`` to a verdict's time (never negative for the verdicts counted)."""
    start = bindparam("since", since, type_=Verdict.created_at.type)
    if session.get_bind().dialect.name == "sqlite":  # times are stored as text: julianday reads them
        return cast((func.julianday(Verdict.created_at) - func.julianday(start)) * 1440, Integer)
    return cast(func.floor(func.extract("epoch", Verdict.created_at - start) / 60), Integer)


def verdicts_each_minute(session: Session, minutes: int = 60, now: datetime | None = None) -> list[int]:
    """Verdicts written in each of the last ``minutes`` minutes, oldest first (grouped by the database)."""
    since = (now or utcnow()) - timedelta(minutes=minutes)
    minute = _minutes_since(session, since).label("minute")
    counted = [0] * minutes
    query = select(minute, func.count()).where(Verdict.created_at >= since).group_by(minute)
    for index, count in session.execute(query):
        if index is not None and 0 <= index < minutes:
            counted[int(index)] += int(count)
    return counted


def latency(session: Session, bounds_ms: Sequence[float]) -> Latency:
    """How long the classifier took per verdict, as cumulative counts at ``bounds_ms``."""
    row = session.execute(select(
        *[func.sum(case((Verdict.elapsed_ms <= bound, 1), else_=0)) for bound in bounds_ms],
        func.count(), func.coalesce(func.sum(Verdict.elapsed_ms), 0.0))).one()
    *at_most, count, total = row
    return Latency([int(value or 0) for value in at_most], int(count), float(total))
