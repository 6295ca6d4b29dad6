"""What every query module shares: UTC time, portable ``IN`` lists and portable upserts.

Writes use the database's own constraints and upserts (INSERT ... ON CONFLICT), so several watchers or
scanners racing on the same files cannot create duplicate rows. SQLite and PostgreSQL are supported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy import any_ as sql_any
from sqlalchemy.orm import Session

from fakewatch.db.tables import Image

IMAGES = cast(Table, Image.__table__)  # for Core statements on hot paths (no ORM bookkeeping)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def among(session: Session, column: Any, values: Iterable[Any]) -> Any:
    """``column IN values``. On PostgreSQL written ``column = ANY(:array)``: one parameter instead of
    thousands, so the statement text, its parsing and its plan stay the same for any number of values."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return column == sql_any(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def upsert(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update: Sequence[str] = ()) -> None:
    """Insert ``rows``; on a conflict over ``keys`` copy the ``update`` columns from the new row, or skip it.

    PostgreSQL gets one statement per call: each column travels as one array and the server unnests them
    (about twice as fast as a statement per row). SQLite gets executemany of one cached statement.
    Rows are written in the order given, so writers that sort their rows take locks in the same order.
    """
    if not rows:
        return
    columns = list(rows[0])
    dialect = session.get_bind().dialect.name
    statement: Any
    parameters: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        arrays = [bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in columns]
        source = func.unnest(*arrays).table_valued(*columns).render_derived()
        statement = postgresql.insert(table).from_select(columns, select(*(source.c[name] for name in columns)))
        parameters = {name: [row[name] for row in rows] for name in columns}
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement, parameters = sqlite.insert(table), list(rows)
    else:
        raise NotImplementedError(f"upserts are implemented for SQLite and PostgreSQL, not {dialect}")
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    session.connection().execute(statement, parameters)
