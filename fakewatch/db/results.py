"""Reading results: images with their latest verdict, one image's whole record, counts and throughput."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, literal_column, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from fakewatch.db import counts
from fakewatch.db.actions import actions_of
from fakewatch.db.common import Prepared, among, as_utc, listed, utcnow
from fakewatch.db.evidence import evidence_of
from fakewatch.db.labels import labels_of
from fakewatch.db.tables import Content, Image, Label, Verdict
from fakewatch.db.tables import Evidence as EvidenceRow
from fakewatch.errors import FilterError
from fakewatch.filters import ResultFilter
from fakewatch.names import to_stored
from fakewatch.values import Order, Reason, Status


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
                   Image.error_kind, Image.deleted_at, Image.warnings, Image.original_path, Image.content_id,
                   Verdict.label, Verdict.p_fake, Verdict.confidence, Verdict.reason, Verdict.reason_detail,
                   Verdict.threshold, Verdict.classifier, Verdict.created_at.label("classified_at"))


def _sort_key(filters: ResultFilter) -> Any:
    """What listings sort by (newest first, unclassified last, then by id). Without verdict filters: the
    image's latest-verdict time, which the (classified_at, id) index serves; with them, the verdict's own
    time (the same value for the latest verdict), which the verdict indexes serve."""
    verdict_side = (filters.classifier or filters.label or filters.since is not None
                    or filters.min_confidence is not None)
    return Verdict.created_at if verdict_side else Image.classified_at


def _after(filters: ResultFilter, cursor: tuple[datetime | None, int] | None) -> list[Any]:
    """Conditions whose result sets, one after the other, are the rows after ``cursor`` in listing order.

    Written as a row-value range (and the unclassified rows separately) rather than one OR, so that each
    part is a range scan of an index: the tenth page costs what the first does."""
    if cursor is None:
        return [None]
    moment, image_id = cursor
    key = _sort_key(filters)
    if moment is None:
        return [and_(key.is_(None), Image.id < image_id)]
    return [tuple_(key, Image.id) < tuple_(moment, image_id), key.is_(None)]


def cursor_for(session: Session, filters: ResultFilter) -> tuple[datetime | None, int] | None:
    """The sort key of ``filters.after``'s image, for keyset pagination; None when there is no cursor."""
    if filters.after is None:
        return None
    if filters.classifier:
        moment = session.scalar(select(Verdict.created_at).join(Image, Image.content_id == Verdict.content_id)
                                .where(Image.id == filters.after, Verdict.classifier == filters.classifier))
    else:
        moment = session.scalar(select(Image.classified_at).where(Image.id == filters.after))
    return moment, filters.after


def results_query(filters: ResultFilter, condition: Any = None) -> Select[*tuple[Any, ...]]:
    """Images with their latest verdict (or the named classifier's), newest verdict first; ``condition``
    narrows it further (a part of :func:`_after`)."""
    verdict_on = [Verdict.content_id == Image.content_id]
    verdict_on.append(Verdict.classifier == filters.classifier if filters.classifier else _latest_verdict())
    if filters.order == Order.P_FAKE:  # classified images only, driven from the (p_fake, id) index of verdicts
        query = (select(*_RESULT_COLUMNS).select_from(Verdict).join(Image, and_(*verdict_on))
                 .outerjoin(Content, Content.id == Image.content_id))
    else:
        query = (select(*_RESULT_COLUMNS)
                 .outerjoin(Content, Content.id == Image.content_id)
                 .outerjoin(Verdict, and_(*verdict_on)))
    if not filters.include_deleted:
        query = query.where(Image.deleted_at.is_(None))
    if filters.label and filters.order == Order.P_FAKE:  # keep SQLite on the p_fake index, not the label one
        query = query.where(func.coalesce(Verdict.label, "") == filters.label)
    elif filters.label:
        query = query.where(Verdict.label == filters.label)
    if filters.classifier:
        query = query.where(Verdict.id.is_not(None))
    if filters.min_confidence is not None:
        query = query.where(Verdict.confidence >= filters.min_confidence)
    if filters.since is not None:
        query = query.where(Verdict.created_at >= filters.since)
    if filters.status:
        query = query.where(Image.status == filters.status)
    if filters.reason:
        query = query.where(Verdict.reason == filters.reason)
    if filters.evidence:
        query = query.where(select(EvidenceRow.id).where(EvidenceRow.content_id == Image.content_id,
                                                         EvidenceRow.kind == filters.evidence).exists())
    if filters.path_glob:
        query = query.where(Image.path.like(_glob_to_like(filters.path_glob), escape="\\"))
        prefix = re.split(r"[*?\[]", filters.path_glob, maxsplit=1)[0]
        if prefix:  # a range on the path index: LIKE alone cannot use it (SQLite's LIKE ignores case). The
            # bounds are rendered into the SQL so the planner sees how narrow the range is and walks that index
            # instead of the listing order's.
            low: Any = bindparam("path_from", prefix, literal_execute=True)
            high: Any = bindparam("path_to", prefix[:-1] + chr(ord(prefix[-1]) + 1), literal_execute=True)
            query = query.where(Image.path >= low, Image.path < high)
    if filters.disagreements:
        analyst = (select(Label.label).where(Label.content_id == Image.content_id)
                   .order_by(Label.id.desc()).limit(1).scalar_subquery())
        query = query.where(analyst.is_not(None), analyst != Verdict.label)
    if filters.changed:
        earlier = aliased(Verdict)
        previous = (select(earlier.label).where(earlier.content_id == Verdict.content_id, earlier.id != Verdict.id)
                    .order_by(earlier.created_at.desc(), earlier.id.desc()).limit(1).scalar_subquery())
        query = query.where(previous.is_not(None), previous != Verdict.label)
    if condition is not None:
        query = query.where(condition)
    if filters.order == Order.P_FAKE:
        query = query.order_by(Verdict.p_fake.desc(), Verdict.id.desc(), Image.id.desc())
    elif filters.order == Order.PATH:
        query = query.order_by(Image.path, Image.id)
    else:
        key = _sort_key(filters)
        # a verdict-side key is never NULL (its filters need a verdict): plain DESC lets PostgreSQL walk the
        # (label, created_at) index backwards instead of sorting every verdict with that label
        query = query.order_by(key.desc() if key is Verdict.created_at else key.desc().nulls_last(), Image.id.desc())
    # LIMIT and OFFSET as literals: with placeholders SQLite's planner assumes any page size and prefers
    # walking the listing order's index over a narrow range on another one (a path prefix)
    if filters.offset:
        query = query.offset(literal_column(str(int(filters.offset))))
    return query.limit(literal_column(str(int(filters.limit)))) if filters.limit else query


def label_counts(session: Session, filters: ResultFilter = ResultFilter()) -> dict[str, int]:
    """How many images ``filters`` would list per current-verdict label, whatever label it asks for
    ("unclassified" for images without a verdict; the path filter counts its SQL prefilter).

    The one way images are counted by label (`stats`, `results --label`, the console, the API): each live
    image once, by its content's newest verdict. Filters on status and deletion alone are read from the
    counts the database keeps (:mod:`fakewatch.db.counts`); a path on the image's own copy of its label
    (``images.verdict_label``); any other filter finds each image's verdict."""
    every = dataclasses.replace(filters, label=None, limit=None, after=None, offset=None, order=Order.NEWEST)
    if _image_side(every) and not every.path_glob:
        return counts.labels(counts.image_groups(session, every.include_deleted, every.status or None))
    if _image_side(every) and every.path_glob:
        query = (select(Image.verdict_label, func.count()).group_by(Image.verdict_label)
                 .where(Image.path.like(_glob_to_like(every.path_glob), escape="\\")))
        if not every.include_deleted:
            query = query.where(Image.deleted_at.is_(None))
        if every.status:
            query = query.where(Image.status == every.status)
        found = session.execute(query).all()
    else:
        listed = results_query(every).order_by(None).subquery()
        found = session.execute(select(listed.c.label, func.count()).group_by(listed.c.label)).all()
    return {label or "unclassified": count for label, count in found}


def _image_side(filters: ResultFilter) -> bool:
    """Whether ``filters`` look at the image row only (no verdict, label or evidence condition)."""
    return not (filters.classifier or filters.min_confidence is not None or filters.since is not None
                or filters.disagreements or filters.changed or filters.reason or filters.evidence)


def result_row(row: Any) -> dict[str, Any]:
    """The public record of one image (a row of :func:`results_query`): the fields of `results --format json`
    and `scan --format json`."""
    classified = row.classifier is not None
    scored = classified and row.reason != Reason.OUT_OF_DOMAIN  # no classifier covered it: its numbers mean nothing
    return {
        "id": row.id,
        "path": row.path,
        "sha256": row.sha256,
        "size": row.size,
        "status": row.status,
        "label": row.label,
        "p_fake": round(row.p_fake, 6) if scored else None,
        "confidence": round(row.confidence, 6) if scored else None,
        "threshold": row.threshold if scored else None,
        "classifier": row.classifier,
        "classified_at": as_utc(row.classified_at).isoformat() if classified else None,  # type: ignore[union-attr]
        "error": row.error_message,
        "error_kind": row.error_kind,
        "deleted": row.deleted_at is not None,
        "warnings": row.warnings,
        "original_path": row.original_path,
        "reason": (row.reason or Reason.CLASSIFIER.value) if classified else None,
        "reason_detail": row.reason_detail if classified else None,
        "evidence": [],
    }


def _with_evidence(session: Session, rows: Iterable[Any], chunk: int = 500) -> Iterator[dict[str, Any]]:
    """Public rows, each with its content's evidence (fetched for a chunk of rows at a time)."""
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            yield from _attach(session, batch)
            batch = []
    yield from _attach(session, batch)


def _attach(session: Session, batch: list[Any]) -> Iterator[dict[str, Any]]:
    found = evidence_of(session, {row.content_id for row in batch if row.content_id is not None})
    for row in batch:
        public = result_row(row)
        public["evidence"] = found.get(row.content_id, [])
        yield public


def results(session: Session, filters: ResultFilter) -> Iterable[dict[str, Any]]:
    if filters.order != Order.NEWEST and filters.after is not None:
        raise FilterError("after (keyset pages) goes with order=newest; use offset for other orders")
    remaining = filters.limit
    for condition in _after(filters, cursor_for(session, filters)):
        listed = 0
        query = results_query(dataclasses.replace(filters, limit=remaining), condition)
        matching = []
        for row in session.execute(query).yield_per(1000):
            listed += 1
            if filters.path_glob and not fnmatch.fnmatchcase(row.path, filters.path_glob):
                continue  # LIKE is a prefilter; fnmatch has the final word on [] classes
            matching.append(row)
            if len(matching) >= 500:
                yield from _with_evidence(session, matching)
                matching = []
        yield from _with_evidence(session, matching)
        if remaining is not None:
            remaining -= listed
            if remaining <= 0:
                return


def rows_for_ids(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    query = results_query(ResultFilter(include_deleted=True)).where(among(session, Image.id, ids))
    rows = {row["id"]: row for row in _with_evidence(session, session.execute(query))}
    return [rows[i] for i in ids if i in rows]


def outcome_counts(session: Session, ids: Sequence[int]) -> tuple[list[tuple[str, str | None, str | None, int]],
                                                                  list[int]]:
    """How many of the images in ``ids`` have each (status, error kind, latest verdict label), counted by
    the database, and the ids of those with errors (in ``ids`` order): what a scan's summary needs when it
    does not show every row."""
    counts = [(status, error_kind, label, int(count))
              for status, error_kind, label, count in _OUTCOME_COUNTS(session, ids=ids).all()]
    if not any(status == Status.ERROR for status, _, _, _ in counts):
        return counts, []
    failed = {image_id for image_id, in _ERROR_IDS(session, ids=ids).all()}
    return counts, [image_id for image_id in ids if image_id in failed]


def _outcome_counts(dialect: str) -> Any:
    outcomes = (results_query(ResultFilter(include_deleted=True)).where(listed(Image.id, "ids", dialect))
                .with_only_columns(Image.status, Image.error_kind, Verdict.label).order_by(None).subquery())
    return (select(outcomes.c.status, outcomes.c.error_kind, outcomes.c.label, func.count())
            .group_by(outcomes.c.status, outcomes.c.error_kind, outcomes.c.label))


_OUTCOME_COUNTS = Prepared(_outcome_counts)
_ERROR_IDS = Prepared(lambda dialect: select(Image.id).where(listed(Image.id, "ids", dialect),
                                                              Image.status == Status.ERROR.value))


def image_ids(session: Session, filters: ResultFilter) -> list[int]:
    """Ids of the images ``results`` would list for ``filters``."""
    return [row["id"] for row in results(session, filters)]


def find_image(session: Session, reference: str) -> Image | None:
    """An image by id, or by path: the file's own name, or its stored form as listings show it."""
    if reference.isdigit():
        found = session.get(Image, int(reference))
        if found is not None:
            return found
    names = {to_stored(reference)}
    if reference.encode("utf-8", "surrogateescape").decode("utf-8", "replace") == reference:
        names.add(reference)  # the stored form itself, as listings show it (it never holds undecodable bytes)
    return session.scalar(select(Image).where(Image.path.in_(names)).limit(1))


def image_location(session: Session, image_id: int) -> tuple[str, int | None] | None:
    """The stored path and content id of the image with id ``image_id``; None if there is none."""
    row = session.execute(select(Image.path, Image.content_id).where(Image.id == image_id)).first()
    return None if row is None else (row.path, row.content_id)


def record_by_id(session: Session, image_id: int) -> dict[str, Any] | None:
    """:func:`image_record` of the image with id ``image_id``; None if there is none."""
    image = session.get(Image, image_id)
    return None if image is None else image_record(session, image)


def image_record(session: Session, image: Image) -> dict[str, Any]:
    """Everything about one image: its row, the latest verdict, verdict history, other paths, labels."""
    latest = rows_for_ids(session, [image.id])[0]
    history, others = [], []
    if image.content_id is not None:
        history = [{"classifier": v.classifier, "label": v.label, **_scores(v), "elapsed_ms": v.elapsed_ms,
                    "host": v.host, "reason": v.reason, "reason_detail": v.reason_detail,
                    "created_at": as_utc(v.created_at).isoformat()}  # type: ignore[union-attr]
                   for v in session.scalars(select(Verdict).where(Verdict.content_id == image.content_id)
                                            .order_by(Verdict.created_at, Verdict.id))]
        others = list(session.scalars(select(Image.path).where(Image.content_id == image.content_id,
                                                               Image.id != image.id)))
    labels = [{"label": item.label, "author": item.author, "note": item.note,
               "created_at": as_utc(item.created_at).isoformat()}  # type: ignore[union-attr]
              for item in session.scalars(select(Label).where(labels_of(image)).order_by(Label.id))]
    return {**latest, "mtime": image.mtime,
            "first_seen": as_utc(image.first_seen).isoformat(),  # type: ignore[union-attr]
            "last_seen": as_utc(image.last_seen).isoformat(),  # type: ignore[union-attr]
            "history": history, "same_content": others, "labels": labels,
            "evidence": (evidence_of(session, [image.content_id], details=True).get(image.content_id, [])
                         if image.content_id is not None else []),
            "actions": actions_of(session, image.id)}


def _scores(verdict: Verdict) -> dict[str, float | None]:
    """A verdict's p_fake, confidence and threshold; none for an image no classifier covered."""
    if verdict.reason == Reason.OUT_OF_DOMAIN:
        return {"p_fake": None, "confidence": None, "threshold": None}
    return {"p_fake": round(verdict.p_fake, 6), "confidence": round(verdict.confidence, 6),
            "threshold": verdict.threshold}


def images_by_status(session: Session) -> dict[str, int]:
    """Live (not deleted) images per status."""
    return counts.statuses(counts.image_groups(session))


def stats(session: Session) -> dict[str, Any]:
    """Images per status, label and error kind, deleted images, contents and verdicts per classifier: all
    from the counts the database keeps."""
    groups = counts.image_groups(session, include_deleted=True)
    live = [group for group in groups if not group.deleted]
    by_status = counts.statuses(live)
    return {
        "images": sum(by_status.values()),
        "deleted": sum(group.count for group in groups if group.deleted),
        "contents": counts.contents(session),
        "by_status": by_status,
        "by_label": {label: n for label, n in counts.labels(live).items() if label != "unclassified"},
        "by_error_kind": counts.error_kinds(live),
        "verdicts_by_classifier": counts.verdicts_by_classifier(session),
    }


def verdicts_per_minute(session: Session, minutes: int) -> float:
    """Verdicts written per minute, averaged over the last ``minutes`` minutes."""
    since = utcnow() - timedelta(minutes=minutes)
    count = session.scalar(select(func.count()).select_from(Verdict).where(Verdict.created_at >= since)) or 0
    return count / minutes
