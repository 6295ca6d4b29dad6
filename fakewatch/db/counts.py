"""Counts read from the rows the database keeps per group (migration 0006), not by counting images.

Each read costs a handful of rows whatever the size of the archive; the triggers that keep the counts run
in the writing transaction, so what a reader sees is what a plain recount would give at its snapshot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fakewatch.db.tables import ContentCount, ImageCount, VerdictCount


@dataclass(frozen=True)
class ImageGroup:
    deleted: bool
    status: str
    error_kind: str | None
    label: str | None  # the current verdict's label; None when unclassified
    count: int


def image_groups(session: Session, include_deleted: bool = False, status: str | None = None) -> list[ImageGroup]:
    """The non-empty image groups: live images only, unless ``include_deleted``; of one status if given."""
    query = select(ImageCount).where(ImageCount.n != 0)
    if not include_deleted:
        query = query.where(ImageCount.deleted.is_(False))
    if status is not None:
        query = query.where(ImageCount.status == status)
    return [ImageGroup(bool(row.deleted), row.status, row.error_kind or None, row.label or None, int(row.n))
            for row in session.scalars(query)]


def labels(groups: list[ImageGroup]) -> dict[str, int]:
    """Images per current label ("unclassified" for none) in ``groups``."""
    counted: Counter[str] = Counter()
    for group in groups:
        counted[group.label or "unclassified"] += group.count
    return {label: count for label, count in counted.items() if count}


def statuses(groups: list[ImageGroup]) -> dict[str, int]:
    counted: Counter[str] = Counter()
    for group in groups:
        counted[group.status] += group.count
    return {status: count for status, count in counted.items() if count}


def error_kinds(groups: list[ImageGroup]) -> dict[str | None, int]:
    counted: Counter[str | None] = Counter()
    for group in groups:
        if group.status == "error":
            counted[group.error_kind] += group.count
    return {kind: count for kind, count in counted.items() if count}


def verdicts_by_classifier(session: Session) -> dict[str, int]:
    return {classifier: int(n) for classifier, n in
            session.execute(select(VerdictCount.classifier, VerdictCount.n).where(VerdictCount.n != 0)).all()}


def contents(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(ContentCount.n), 0))) or 0)
