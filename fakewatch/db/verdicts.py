"""Writing verdicts and image states: the classification side of the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from fakewatch.db.common import IMAGES, Prepared, classifier_names, listed, upsert
from fakewatch.db.tables import Verdict

_CLASSIFIED = Prepared(lambda dialect: select(Verdict.content_id).where(
    listed(Verdict.content_id, "contents", dialect), listed(Verdict.classifier, "classifiers", dialect)))
_VERDICT_TIMES = Prepared(lambda dialect: select(Verdict.content_id, Verdict.classifier, func.max(Verdict.created_at))
                          .where(listed(Verdict.content_id, "contents", dialect))
                          .group_by(Verdict.content_id, Verdict.classifier))
_MOMENT = bindparam("moment", type_=IMAGES.c.classified_at.type)
_DATE_COPIES = Prepared(lambda dialect: update(IMAGES).where(
    listed(IMAGES.c.content_id, "contents", dialect),
    or_(IMAGES.c.classified_at.is_(None), IMAGES.c.classified_at != _MOMENT)).values(classified_at=_MOMENT))
_SET_STATUS = Prepared(lambda dialect: update(IMAGES).where(listed(IMAGES.c.id, "ids", dialect)).values({
    **{name: bindparam(name, type_=IMAGES.c[name].type) for name in ("status", "error_kind", "error_message",
                                                                     "warnings")},
    # no new time given: the row keeps its own
    "classified_at": func.coalesce(bindparam("classified_at", type_=IMAGES.c.classified_at.type),
                                   IMAGES.c.classified_at)}), driver=True)


def classified_contents(session: Session, content_ids: Iterable[int], classifiers: str | Sequence[str]) -> set[int]:
    """The contents among ``content_ids`` that already have a verdict from ``classifiers`` (one id or several)."""
    content_ids = list(content_ids)
    names = classifier_names(classifiers)
    if not content_ids or not names:
        return set()
    return {content_id for content_id, in _CLASSIFIED(session, contents=content_ids, classifiers=names).all()}


def verdict_times(session: Session, content_ids: Iterable[int]) -> dict[int, dict[str, datetime]]:
    """For each of ``content_ids`` that has verdicts: classifier version -> the time of its latest verdict
    for that content. One query answers both "already judged by this classifier?" and "judged when?"."""
    content_ids = list(content_ids)
    if not content_ids:
        return {}
    rows = _VERDICT_TIMES(session, contents=content_ids).all()
    if not rows:  # the usual case for new files: nothing to convert
        return {}
    dialect = session.get_bind().dialect
    convert = Verdict.created_at.type.dialect_impl(dialect).result_processor(dialect, None)  # text on SQLite
    found: dict[int, dict[str, datetime]] = {}
    for content_id, classifier, moment in rows:
        found.setdefault(content_id, {})[classifier] = convert(moment) if convert and isinstance(moment, str) \
            else moment
    return found


def mark_classified(session: Session, content_ids: Iterable[int], moment: datetime) -> None:
    """Stamp every image of these contents with the time of their newest verdict (what listings sort by).
    Rows stamped with it already (by :func:`set_status` with ``classified_at``) are not written again, so
    each row is written once, and the other copies of a content usually leave nothing to write."""
    content_ids = list(content_ids)
    if content_ids:
        _DATE_COPIES(session, contents=content_ids, moment=moment)


def write_verdicts(session: Session, rows: Sequence[dict[str, Any]], replace: bool = False) -> None:
    """Insert verdicts; an existing one for the same content and classifier wins unless ``replace``."""
    rows = sorted(rows, key=lambda row: row["content_id"])  # same lock order in every worker
    columns = ("label", "p_fake", "confidence", "threshold", "elapsed_ms", "host", "created_at", "reason",
               "reason_detail")
    upsert(session, Verdict.__table__, rows, keys=["content_id", "classifier"], update=columns if replace else ())


def set_status(session: Session, ids: Iterable[int], status: str, error_kind: str | None = None,
               error_message: str | None = None, warnings: str | None = None,
               classified_at: datetime | None = None) -> None:
    """Set the images' status (and error or warnings); ``classified_at`` also stamps their verdict time."""
    ids = list(ids)
    if ids:
        _SET_STATUS(session, ids=ids, status=status, error_kind=error_kind, error_message=error_message,
                    warnings=warnings, classified_at=classified_at)
