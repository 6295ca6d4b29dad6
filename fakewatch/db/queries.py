"""Reads and writes on the results database, portable across SQLite and PostgreSQL.

Writes use the database's own constraints and upserts (INSERT ... ON CONFLICT), so several watchers or
scanners racing on the same files cannot create duplicate rows.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, Table, and_, any_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from fakewatch.db.tables import Content, Image, Label, Verdict

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
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _upsert(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
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
        arrays = [bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in columns]
        source = func.unnest(*arrays).table_valued(*columns).render_derived()
        statement = postgresql.insert(table).from_select(columns, select(*(source.c[name] for name in columns)))
        parameters = {name: [row[name] for row in rows] for name in columns}
    elif dialect == "sqlite":
        statement, parameters = sqlite.insert(table), list(rows)
    else:
        raise NotImplementedError(f"upserts are implemented for SQLite and PostgreSQL, not {dialect}")
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    session.connection().execute(statement, parameters)


# --- recording files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """What intake learned about one file; ``error`` set means it could not be read."""

    path: str
    size: int | None
    mtime: float | None
    sha256: str | None = None
    error_kind: str | None = None
    error_message: str | None = None


def _content_ids(session: Session, records: Sequence[FileRecord]) -> dict[str, int]:
    sizes = {record.sha256: record.size or 0 for record in records if record.sha256}
    if not sizes:
        return {}
    now = utcnow()
    # sorted: concurrent writers then take row locks in the same order and cannot deadlock each other
    _upsert(session, Content.__table__, [{"sha256": digest, "size": sizes[digest], "created_at": now}
                                         for digest in sorted(sizes)], keys=["sha256"])
    rows = session.execute(select(Content.sha256, Content.id).where(among(session, Content.sha256, sizes)))
    return {row.sha256: row.id for row in rows}


def record_files(session: Session, records: Sequence[FileRecord], classifier: str,
                 force: bool = False) -> dict[str, tuple[int, str]]:
    """Upsert image rows for ``records``; return path -> (image id, status) for each.

    An image whose content already has a verdict from ``classifier`` is marked done at once (unless
    ``force``); unreadable files are marked error with their kind; the rest are pending.
    """
    if not records:
        return {}
    content_ids = _content_ids(session, records)
    classified = set()
    if not force and content_ids:
        classified = set(session.scalars(select(Verdict.content_id).where(
            among(session, Verdict.content_id, content_ids.values()), Verdict.classifier == classifier)))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for record in records:
        content_id = content_ids.get(record.sha256) if record.sha256 else None
        status = "error" if record.error_kind else "done" if content_id in classified else "pending"
        rows.append({"path": record.path, "content_id": content_id, "size": record.size, "mtime": record.mtime,
                     "status": status, "error_kind": record.error_kind, "error_message": record.error_message,
                     "first_seen": now, "last_seen": now, "queued_at": now if status == "pending" else None,
                     "deleted_at": None})
    _upsert(session, Image.__table__, sorted(rows, key=lambda row: row["path"]), keys=["path"],  # lock order
            update=("content_id", "size", "mtime", "status", "error_kind", "error_message", "last_seen",
                    "queued_at", "deleted_at"))
    paths = [row["path"] for row in rows]
    recorded = session.execute(select(Image.path, Image.id, Image.status).where(among(session, Image.path, paths)))
    return {row.path: (row.id, row.status) for row in recorded}


def unchanged(session: Session, stats: Sequence[tuple[str, int, float]]) -> set[str]:
    """Paths among ``stats`` (path, size, mtime) already recorded with that size and mtime and settled
    (not pending; pending ones are re-dispatched by :func:`pending_ids`)."""
    if not stats:
        return set()
    wanted = {path: (size, mtime) for path, size, mtime in stats}
    rows = session.execute(select(Image.path, Image.size, Image.mtime).where(
        among(session, Image.path, wanted), Image.deleted_at.is_(None), Image.status != "pending"))
    return {row.path for row in rows if wanted[row.path] == (row.size, row.mtime)}


def touch_seen(session: Session, paths: Sequence[str]) -> None:
    if paths:
        session.execute(update(Image).where(among(session, Image.path, paths)).values(last_seen=utcnow()))


def mark_deleted(session: Session, path: str) -> bool:
    """Record that a file (or every file under a folder) disappeared; history stays."""
    now = utcnow()
    prefix = path.rstrip("/") + "/"
    result = session.execute(update(Image).where(
        or_(Image.path == path, Image.path.startswith(prefix, autoescape=True)),
        Image.deleted_at.is_(None)).values(deleted_at=now, last_seen=now,
                                           status=case((Image.status == "pending", "skipped"), else_=Image.status)))
    return bool(cast(CursorResult[Any], result).rowcount)


def rename(session: Session, old: str, new: str) -> bool:
    """Move an image row (and its history) to a new path. Returns False if ``old`` was unknown."""
    image = session.scalar(select(Image).where(Image.path == old))
    if image is None:
        return False
    clash = session.scalar(select(Image).where(Image.path == new))
    if clash is not None:
        session.delete(clash)
        session.flush()
    image.path = new
    image.last_seen = utcnow()
    image.deleted_at = None
    return True


def rename_tree(session: Session, old_dir: str, new_dir: str) -> int:
    old_prefix, new_prefix = old_dir.rstrip("/") + "/", new_dir.rstrip("/") + "/"
    images = session.scalars(select(Image).where(Image.path.startswith(old_prefix, autoescape=True))).all()
    for image in images:
        rename(session, image.path, new_prefix + image.path[len(old_prefix):])
    return len(images)


def pending_ids(session: Session, older_than: datetime | None = None, limit: int = 100_000) -> list[int]:
    """Images waiting for a verdict (optionally only those queued before ``older_than``)."""
    query = select(Image.id).where(Image.status == "pending", Image.deleted_at.is_(None))
    if older_than is not None:
        query = query.where(or_(Image.queued_at.is_(None), Image.queued_at < older_than))
    return list(session.scalars(query.order_by(Image.id).limit(limit)))


def mark_queued(session: Session, ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        session.connection().execute(update(IMAGES).where(among(session, IMAGES.c.id, ids)).values(queued_at=utcnow()))


# --- writing verdicts -------------------------------------------------------------------------------


def write_verdicts(session: Session, rows: Sequence[dict[str, Any]], replace: bool = False) -> None:
    """Insert verdicts; an existing one for the same content and classifier wins unless ``replace``."""
    rows = sorted(rows, key=lambda row: row["content_id"])  # same lock order in every worker
    columns = ("label", "p_fake", "confidence", "threshold", "elapsed_ms", "host", "created_at")
    _upsert(session, Verdict.__table__, rows, keys=["content_id", "classifier"], update=columns if replace else ())


def set_status(session: Session, ids: Iterable[int], status: str, error_kind: str | None = None,
               error_message: str | None = None) -> None:
    ids = list(ids)
    if ids:  # Core, not ORM: no loaded objects to synchronise, a third faster on hot paths
        session.connection().execute(update(IMAGES).where(among(session, IMAGES.c.id, ids)).values(
            status=status, error_kind=error_kind, error_message=error_message))


# --- querying results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultFilter:
    label: str | None = None
    min_confidence: float | None = None
    since: datetime | None = None
    path_glob: str | None = None
    classifier: str | None = None
    status: str | None = None
    include_deleted: bool = False
    disagreements: bool = False  # the latest verdict contradicts the latest analyst label
    changed: bool = False  # the latest verdict's label differs from the verdict before it
    limit: int | None = None


def _latest_verdict() -> Any:
    newer = aliased(Verdict)
    return ~select(newer.id).where(newer.content_id == Verdict.content_id,
                                   or_(newer.created_at > Verdict.created_at,
                                       and_(newer.created_at == Verdict.created_at, newer.id > Verdict.id))
                                   ).exists()


def _glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


# plain columns, not ORM objects: listing a million rows builds no objects
_RESULT_COLUMNS = (Image.id, Image.path, Content.sha256, Image.size, Image.status, Image.error_message,
                   Image.error_kind, Image.deleted_at, Verdict.label, Verdict.p_fake, Verdict.confidence,
                   Verdict.threshold, Verdict.classifier, Verdict.created_at.label("classified_at"))


def results_query(filters: ResultFilter) -> Select[*tuple[Any, ...]]:
    """Images with their latest verdict (or the named classifier's), newest verdict first."""
    verdict_on = [Verdict.content_id == Image.content_id]
    verdict_on.append(Verdict.classifier == filters.classifier if filters.classifier else _latest_verdict())
    query = (select(*_RESULT_COLUMNS)
             .outerjoin(Content, Content.id == Image.content_id)
             .outerjoin(Verdict, and_(*verdict_on)))
    if not filters.include_deleted:
        query = query.where(Image.deleted_at.is_(None))
    if filters.label:
        query = query.where(Verdict.label == filters.label)
    if filters.classifier:
        query = query.where(Verdict.id.is_not(None))
    if filters.min_confidence is not None:
        query = query.where(Verdict.confidence >= filters.min_confidence)
    if filters.since is not None:
        query = query.where(Verdict.created_at >= filters.since)
    if filters.status:
        query = query.where(Image.status == filters.status)
    if filters.path_glob:
        query = query.where(Image.path.like(_glob_to_like(filters.path_glob), escape="\\"))
    if filters.disagreements:
        analyst = (select(Label.label).where(Label.image_id == Image.id)
                   .order_by(Label.id.desc()).limit(1).scalar_subquery())
        query = query.where(analyst.is_not(None), analyst != Verdict.label)
    if filters.changed:
        earlier = aliased(Verdict)
        previous = (select(earlier.label).where(earlier.content_id == Verdict.content_id, earlier.id != Verdict.id)
                    .order_by(earlier.created_at.desc(), earlier.id.desc()).limit(1).scalar_subquery())
        query = query.where(previous.is_not(None), previous != Verdict.label)
    query = query.order_by(Verdict.created_at.desc().nulls_last(), Image.id.desc())
    return query.limit(filters.limit) if filters.limit else query


def result_row(row: Any) -> dict[str, Any]:
    """The public record of one image (a row of :func:`results_query`): the fields of `results --format json`
    and `scan --format json`."""
    classified = row.classifier is not None
    return {
        "id": row.id,
        "path": row.path,
        "sha256": row.sha256,
        "size": row.size,
        "status": row.status,
        "label": row.label,
        "p_fake": round(row.p_fake, 6) if classified else None,
        "confidence": round(row.confidence, 6) if classified else None,
        "threshold": row.threshold,
        "classifier": row.classifier,
        "classified_at": as_utc(row.classified_at).isoformat() if classified else None,  # type: ignore[union-attr]
        "error": row.error_message,
        "error_kind": row.error_kind,
        "deleted": row.deleted_at is not None,
    }


def results(session: Session, filters: ResultFilter) -> Iterable[dict[str, Any]]:
    for row in session.execute(results_query(filters)).yield_per(1000):
        if filters.path_glob and not fnmatch.fnmatchcase(row.path, filters.path_glob):
            continue  # LIKE is a prefilter; fnmatch has the final word on [] classes
        yield result_row(row)


def rows_for_ids(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    query = results_query(ResultFilter(include_deleted=True)).where(among(session, Image.id, ids))
    rows = {row.id: result_row(row) for row in session.execute(query)}
    return [rows[i] for i in ids if i in rows]


def image_ids(session: Session, filters: ResultFilter) -> list[int]:
    """Ids of the images ``results`` would list for ``filters``."""
    return [row["id"] for row in results(session, filters)]


def mark_pending(session: Session, ids: Sequence[int]) -> None:
    """Queue images for classification again (e.g. a re-scan with a new classifier); verdicts stay."""
    for start in range(0, len(ids), 1000):
        session.execute(update(Image).where(Image.id.in_(list(ids[start:start + 1000])), Image.deleted_at.is_(None))
                        .values(status="pending", error_kind=None, error_message=None, queued_at=utcnow()))


def add_label(session: Session, image: Image, label: str, author: str, note: str | None) -> None:
    """Record an analyst's judgement (fake or real) on an image."""
    if label not in ("fake", "real"):
        raise ValueError("an analyst label is 'fake' or 'real'")
    session.add(Label(image_id=image.id, label=label, author=author, note=note, created_at=utcnow()))


def find_image(session: Session, reference: str) -> Image | None:
    """An image by id or by path."""
    if reference.isdigit():
        found = session.get(Image, int(reference))
        if found is not None:
            return found
    return session.scalar(select(Image).where(Image.path == reference))


def image_record(session: Session, image: Image) -> dict[str, Any]:
    """Everything about one image: its row, the latest verdict, verdict history, other paths, labels."""
    latest = rows_for_ids(session, [image.id])[0]
    history, others = [], []
    if image.content_id is not None:
        history = [{"classifier": v.classifier, "label": v.label, "p_fake": round(v.p_fake, 6),
                    "confidence": round(v.confidence, 6), "threshold": v.threshold, "elapsed_ms": v.elapsed_ms,
                    "host": v.host, "created_at": as_utc(v.created_at).isoformat()}  # type: ignore[union-attr]
                   for v in session.scalars(select(Verdict).where(Verdict.content_id == image.content_id)
                                            .order_by(Verdict.created_at, Verdict.id))]
        others = list(session.scalars(select(Image.path).where(Image.content_id == image.content_id,
                                                               Image.id != image.id)))
    labels = [{"label": item.label, "author": item.author, "note": item.note,
               "created_at": as_utc(item.created_at).isoformat()}  # type: ignore[union-attr]
              for item in session.scalars(select(Label).where(Label.image_id == image.id).order_by(Label.id))]
    return {**latest, "mtime": image.mtime,
            "first_seen": as_utc(image.first_seen).isoformat(),  # type: ignore[union-attr]
            "last_seen": as_utc(image.last_seen).isoformat(),  # type: ignore[union-attr]
            "history": history, "same_content": others, "labels": labels}


def stats(session: Session) -> dict[str, Any]:
    live = Image.deleted_at.is_(None)
    by_status = dict(session.execute(select(Image.status, func.count()).where(live).group_by(Image.status)).all())
    by_error = dict(session.execute(select(Image.error_kind, func.count())
                                    .where(live, Image.status == "error").group_by(Image.error_kind)).all())
    by_label = dict(session.execute(select(Verdict.label, func.count()).where(_latest_verdict())
                                    .group_by(Verdict.label)).all())
    by_classifier = dict(session.execute(select(Verdict.classifier, func.count())
                                         .group_by(Verdict.classifier)).all())
    return {
        "images": sum(by_status.values()),
        "deleted": session.scalar(select(func.count()).select_from(Image).where(Image.deleted_at.is_not(None))),
        "contents": session.scalar(select(func.count()).select_from(Content)),
        "by_status": by_status,
        "by_label": by_label,
        "by_error_kind": by_error,
        "verdicts_by_classifier": by_classifier,
    }
