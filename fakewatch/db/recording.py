"""Recording files: image and content rows, renames and deletions, and what is still pending.

Intake describes each file it looked at with an object shaped like :class:`RecordedFile`; this module
turns those into rows with upserts, so racing recorders never create duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, case, or_, select, update
from sqlalchemy.orm import Session

from fakewatch.db.common import IMAGES, Prepared, among, classifier_names, listed, upsert, utcnow
from fakewatch.db.labels import hand_over
from fakewatch.db.tables import Content, Image
from fakewatch.db.verdicts import verdict_times
from fakewatch.names import to_fs, to_stored

_CONTENT_IDS = Prepared(lambda dialect: select(Content.sha256, Content.id).where(
    listed(Content.sha256, "digests", dialect)), driver=True)
_RECORDED = Prepared(lambda dialect: select(Image.path, Image.id, Image.status).where(
    listed(Image.path, "paths", dialect)), driver=True)


class RecordedFile(Protocol):
    """What recording needs to know about one file; ``error_kind`` set means it could not be read."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def mtime(self) -> float | None: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def error_kind(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...


def _content_ids(session: Session, records: Sequence[RecordedFile]) -> dict[str, int]:
    sizes = {record.sha256: record.size or 0 for record in records if record.sha256}
    if not sizes:
        return {}
    now = utcnow()
    # sorted: concurrent writers then take row locks in the same order and cannot deadlock each other
    upsert(session, Content.__table__, [{"sha256": digest, "size": sizes[digest], "created_at": now}
                                        for digest in sorted(sizes)], keys=["sha256"])
    return dict(_CONTENT_IDS(session, digests=list(sizes)).all())


def record_files(session: Session, records: Sequence[RecordedFile], classifier: str | Sequence[str],
                 force: bool = False, queued_at: datetime | None = None) -> dict[str, tuple[int, str]]:
    """Upsert image rows for ``records``; return path -> (image id, status) for each.

    An image whose content already has a verdict from ``classifier`` (one version id, or the ids in use)
    is marked done at once (unless
    ``force``); unreadable files are marked error with their kind; the rest are pending, stamped as queued
    at ``queued_at`` when the caller sends them right after the commit (one write per row instead of two).
    """
    if not records:
        return {}
    content_ids = _content_ids(session, records)
    times = verdict_times(session, content_ids.values())  # classifier -> latest verdict, per content
    names = classifier_names(classifier)
    classified = set() if force else {content_id for content_id, by in times.items() if not by.keys().isdisjoint(names)}
    latest = {content_id: max(by.values()) for content_id, by in times.items()}
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for record in records:
        content_id = content_ids.get(record.sha256) if record.sha256 else None
        status = "error" if record.error_kind else "done" if content_id in classified else "pending"
        rows.append({"path": to_stored(record.path), "content_id": content_id, "size": record.size,
                     "mtime": record.mtime,
                     "status": status, "error_kind": record.error_kind, "error_message": record.error_message,
                     "first_seen": now, "last_seen": now,
                     "queued_at": queued_at if status == "pending" else None,
                     "deleted_at": None, "classified_at": latest.get(content_id)})  # type: ignore[arg-type]
    upsert(session, Image.__table__, sorted(rows, key=lambda row: row["path"]), keys=["path"],  # lock order
           update=("content_id", "size", "mtime", "status", "error_kind", "error_message", "last_seen",
                   "queued_at", "deleted_at", "classified_at"))
    recorded = _RECORDED(session, paths=[row["path"] for row in rows]).all()
    return {to_fs(path): (image_id, status) for path, image_id, status in recorded}


def unchanged(session: Session, stats: Sequence[tuple[str, int, float]]) -> set[str]:
    """Paths among ``stats`` (path, size, mtime) already recorded with that size and mtime and settled
    (not pending; pending ones are re-dispatched by :func:`pending_ids`)."""
    if not stats:
        return set()
    wanted = {to_stored(path): (size, mtime) for path, size, mtime in stats}
    rows = session.execute(select(Image.path, Image.size, Image.mtime).where(
        among(session, Image.path, wanted), Image.deleted_at.is_(None), Image.status != "pending"))
    return {to_fs(row.path) for row in rows if wanted[row.path] == (row.size, row.mtime)}


def mark_deleted(session: Session, path: str) -> bool:
    """Record that a file (or every file under a folder) disappeared; history stays."""
    now = utcnow()
    path = to_stored(path)
    prefix = path.rstrip("/") + "/"
    result = session.execute(update(Image).where(
        or_(Image.path == path, Image.path.startswith(prefix, autoescape=True)),
        Image.deleted_at.is_(None)).values(deleted_at=now, last_seen=now,
                                           status=case((Image.status == "pending", "skipped"), else_=Image.status)))
    return bool(cast(CursorResult[Any], result).rowcount)


def live_paths(session: Session, folder: str, after_id: int = 0, limit: int = 5000) -> list[tuple[int, str]]:
    """(id, file system path) of recorded, not deleted images under ``folder``, by id after ``after_id``."""
    prefix = to_stored(folder.rstrip("/") + "/")
    rows = session.execute(select(Image.id, Image.path).where(
        Image.id > after_id, Image.deleted_at.is_(None), Image.path.startswith(prefix, autoescape=True))
        .order_by(Image.id).limit(limit))
    return [(row.id, to_fs(row.path)) for row in rows]


def mark_gone(session: Session, paths: Sequence[str]) -> int:
    """Mark exactly these files deleted (not what lies under them); returns how many rows changed."""
    now = utcnow()
    stored = [to_stored(path) for path in paths]
    result = session.execute(update(Image).where(among(session, Image.path, stored), Image.deleted_at.is_(None))
                             .values(deleted_at=now, last_seen=now,
                                     status=case((Image.status == "pending", "skipped"), else_=Image.status)))
    return int(cast(CursorResult[Any], result).rowcount)


def rename(session: Session, old: str, new: str) -> bool:
    """Move an image row (and its history) to a new path. Returns False if ``old`` was unknown."""
    old, new = to_stored(old), to_stored(new)
    image = session.scalar(select(Image).where(Image.path == old))
    if image is None:
        return False
    clash = session.scalar(select(Image).where(Image.path == new))
    if clash is not None:
        hand_over(session, clash.id, image.id)  # labels keep their content; they do not judge the newcomer
        session.delete(clash)
        session.flush()
    image.path = new
    image.last_seen = utcnow()
    image.deleted_at = None
    return True


def rename_tree(session: Session, old_dir: str, new_dir: str) -> int:
    old_prefix, new_prefix = old_dir.rstrip("/") + "/", new_dir.rstrip("/") + "/"
    stored_prefix = to_stored(old_prefix)
    images = session.scalars(select(Image).where(Image.path.startswith(stored_prefix, autoescape=True))).all()
    for image in images:
        old = to_fs(image.path)
        rename(session, old, new_prefix + old[len(old_prefix):])
    return len(images)


def pending_ids(session: Session, older_than: datetime | None = None, limit: int = 100_000) -> list[int]:
    """Images waiting for a verdict (optionally only those queued before ``older_than``)."""
    query = select(Image.id).where(Image.status == "pending", Image.deleted_at.is_(None))
    if older_than is not None:
        query = query.where(or_(Image.queued_at.is_(None), Image.queued_at < older_than))
    return list(session.scalars(query.order_by(Image.id).limit(limit)))


def mark_queued(session: Session, ids: Iterable[int], sent: bool = True) -> None:
    """Stamp pending images as queued now; ``sent`` False clears the stamp (recorded for sending, not sent)."""
    ids = list(ids)
    if ids:
        session.connection().execute(update(IMAGES).where(among(session, IMAGES.c.id, ids)).values(
            queued_at=utcnow() if sent else None))


def mark_pending(session: Session, ids: Sequence[int]) -> None:
    """Queue images for classification again (e.g. a re-scan with a new classifier); verdicts stay."""
    for start in range(0, len(ids), 1000):
        session.execute(update(Image).where(Image.id.in_(list(ids[start:start + 1000])), Image.deleted_at.is_(None))
                        .values(status="pending", error_kind=None, error_message=None, queued_at=utcnow()))
