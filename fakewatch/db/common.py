"""What every query module shares: UTC time, portable ``IN`` lists, portable upserts and hot statements.

Writes use the database's own constraints and upserts (INSERT ... ON CONFLICT), so several watchers or
scanners racing on the same files cannot create duplicate rows. SQLite and PostgreSQL are supported.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import String, Table, TypeDecorator, bindparam, func, select
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


def classifier_names(classifiers: str | Sequence[str]) -> list[str]:
    """Classifier version ids given as one id or several, as a list."""
    return [classifiers] if isinstance(classifiers, str) else list(classifiers)


def among(session: Session, column: Any, values: Iterable[Any]) -> Any:
    """``column IN values``. On PostgreSQL written ``column = ANY(:array)``: one parameter instead of
    thousands, so the statement text, its parsing and its plan stay the same for any number of values."""
    values = list(values)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return column == sql_any(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    if dialect == "sqlite" and all(type(value) in (int, str) for value in values):
        # one JSON array instead of one parameter per value: a cached statement (an expanded IN list is
        # rendered again on every call) and no limit on the count
        return column.in_(_json_members(bindparam(None, json.dumps(values, ensure_ascii=False), type_=String)))
    return column.in_(values)


def _json_members(array: Any) -> Any:
    """The members of a JSON array parameter, as a subquery for ``IN`` (SQLite)."""
    return select(func.json_each(array).table_valued("value").c.value)


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
        connection = session.connection()
        text, order, processors = _sqlite_upsert(table, tuple(columns), tuple(keys), tuple(update), connection.dialect)
        connection.exec_driver_sql(text, _sqlite_rows(rows, order, processors))
        return
    else:
        raise NotImplementedError(f"upserts are implemented for SQLite and PostgreSQL, not {dialect}")
    session.connection().execute(_on_conflict(statement, keys, update), parameters)


def _on_conflict(statement: Any, keys: Sequence[str], update: Sequence[str]) -> Any:
    if update:
        return statement.on_conflict_do_update(index_elements=list(keys),
                                               set_={name: statement.excluded[name] for name in update})
    return statement.on_conflict_do_nothing(index_elements=list(keys))


@functools.lru_cache(maxsize=64)
def _sqlite_upsert(table: Any, columns: tuple[str, ...], keys: tuple[str, ...], update: tuple[str, ...],
                   dialect: Any) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """The SQLite upsert's text, its parameters' order, and each one's type conversion (SQLAlchemy's own),
    compiled once: a batch then goes to the driver's executemany as plain tuples, without SQLAlchemy's
    per-row parameter handling (most of an upsert's cost on SQLite)."""
    from sqlalchemy.dialects import sqlite

    compiled = _on_conflict(sqlite.insert(table).values({name: bindparam(name) for name in columns}),
                            keys, update).compile(dialect=dialect)
    order = tuple(compiled.positiontup or ())
    processors = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order)
    return str(compiled), order, processors


def _sqlite_rows(rows: Sequence[dict[str, Any]], order: tuple[str, ...],
                 processors: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """``rows`` as tuples in ``order``, each value converted as SQLAlchemy would; the rows of a batch share
    a few times, so each distinct time is converted once."""
    pick = operator.itemgetter(*order)
    if len(order) == 1:
        return [(pick(row),) for row in rows]
    converting = [(index, process) for index, process in enumerate(processors) if process is not None]
    if not converting:
        return [pick(row) for row in rows]
    times: dict[datetime, Any] = {}
    result = []
    for row in rows:
        values = list(pick(row))
        for index, process in converting:
            value = values[index]
            if value is None:
                continue
            if isinstance(value, datetime):
                if value not in times:
                    times[value] = process(value)
                values[index] = times[value]
            else:
                values[index] = process(value)
        result.append(tuple(values))
    return result


class JSONList(TypeDecorator[Any]):
    """A list bound as one JSON array text (SQLite reads it with ``json_each``)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(list(value), ensure_ascii=False)


def listed(column: Any, name: str, dialect: str) -> Any:
    """``column IN :name`` for a statement built once per dialect, where ``name`` is bound to a list: an
    array on PostgreSQL, a JSON array on SQLite (one parameter, whatever the count)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return column == sql_any(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(_json_members(bindparam(name, type_=JSONList)))


class Prepared:
    """A statement on a hot path, built by ``build(dialect name)`` with named parameters (lists through
    :func:`listed`) once per dialect, and run in the session's transaction.

    By default it runs as plain SQLAlchemy Core: the same statement object every call, so SQLAlchemy's
    compiled cache serves it. With ``driver=True`` it runs on PostgreSQL (psycopg) as text compiled once,
    straight through the driver, lists sent as one array text: kept only where ``bench/statements.py``
    measured SQLAlchemy's parameter handling at a quarter or more of the call (looking up contents by
    digest and images by path, which intake runs for every batch of files, and the worker's status
    update), and relying on the compiled statement's ``binds``, which is why SQLAlchemy is pinned to a
    tested minor release. On SQLite every statement runs as plain SQLAlchemy (within ~15% of the
    driver path in that benchmark)."""

    def __init__(self, build: Callable[[str], Any], driver: bool = False) -> None:
        self.build = build
        self.driver = driver
        self._statements: dict[str, Any] = {}
        self._postgresql: tuple[str, dict[str, Any]] | None = None

    def statement(self, dialect: str) -> Any:
        if dialect not in self._statements:
            self._statements[dialect] = self.build(dialect)
        return self._statements[dialect]

    def __call__(self, session: Session, **params: Any) -> Any:
        connection = session.connection()
        dialect = connection.dialect
        if self.driver and dialect.name == "postgresql" and dialect.driver == "psycopg":
            return self.by_driver(session, **params)
        return connection.execute(self.statement(dialect.name), params)

    def by_driver(self, session: Session, **params: Any) -> Any:
        """Run as compiled text through psycopg (PostgreSQL only)."""
        connection = session.connection()
        if self._postgresql is None:
            compiled = self.statement("postgresql").compile(dialect=connection.dialect)
            self._postgresql = str(compiled), _constants(compiled)
        text, constants = self._postgresql
        return connection.exec_driver_sql(text, {**constants, **{
            name: _pg_array(value) if isinstance(value, (list, tuple, set, frozenset)) else value
            for name, value in params.items()}})


def _constants(compiled: Any) -> dict[str, Any]:
    """The values written into a compiled statement (its other parameters are given at each call)."""
    return {name: bind.effective_value for name, bind in compiled.binds.items() if bind.effective_value is not None}


def _pg_array(values: Iterable[Any]) -> Any:
    """A list of ints or strings as PostgreSQL's array text (``{1,2}``, ``{"a","b\\"c"}``), cast by the
    statement: one text parameter, where psycopg would format every element in Python. Other lists as
    they are."""
    values = list(values)
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(value) is str for value in values):
        return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                              for value in values) + "}"
    return values
