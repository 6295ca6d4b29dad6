"""Verdict actions in the database: claimed once per image, verdict and action, then finished.

A claim inserts one row per (image, verdict, action) carrying a fresh token; the rows that come back with
that token are this caller's to run. A second worker, a redelivered task or a re-scan finds the rows
already there and runs nothing, so an action runs at most once per image and verdict.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fakewatch.db.common import among, classifier_names, upsert, utcnow
from fakewatch.db.tables import Action, Image, Verdict


@dataclass(frozen=True)
class Claim:
    """One action this caller runs: on which image (and its path then), for which verdict."""

    action_id: int
    action: str
    image_id: int
    verdict_id: int
    stored_path: str


def claim(session: Session, image_ids: Sequence[int], classifier: str | Sequence[str], labels: Sequence[str],
          actions: Sequence[str]) -> list[Claim]:
    """Claim ``actions`` for the images among ``image_ids`` whose verdict from ``classifier`` (one version
    id, or several) has one of
    ``labels``; returns the claims this call won (in image order, actions in the order given)."""
    if not image_ids or not actions or not labels:
        return []
    names = classifier_names(classifier)
    rows = session.execute(select(Image.id, Image.path, Verdict.id.label("verdict_id"))
                           .join(Verdict, Verdict.content_id == Image.content_id)
                           .where(among(session, Image.id, list(image_ids)), Verdict.classifier.in_(names),
                                  Verdict.label.in_(list(labels)), Image.deleted_at.is_(None))).all()
    if not rows:
        return []
    token = f"claimed {uuid.uuid4().hex}"
    now = utcnow()
    upsert(session, Action.__table__, sorted(
        ({"image_id": row.id, "verdict_id": row.verdict_id, "action": name, "status": "running", "detail": token,
          "attempts": 0, "created_at": now, "finished_at": None} for row in rows for name in actions),
        key=lambda item: (item["image_id"], item["action"])), keys=["image_id", "verdict_id", "action"])
    paths = {row.id: row.path for row in rows}
    won = session.execute(select(Action.id, Action.action, Action.image_id, Action.verdict_id)
                          .where(Action.detail == token)).all()
    order = {name: index for index, name in enumerate(actions)}
    claims = [Claim(row.id, row.action, row.image_id, row.verdict_id, paths[row.image_id]) for row in won]
    return sorted(claims, key=lambda item: (item.image_id, order[item.action]))


def finish(session: Session, action_id: int, status: str, detail: str, attempts: int) -> None:
    session.execute(update(Action).where(Action.id == action_id).values(
        status=status, detail=detail[:2000], attempts=attempts, finished_at=utcnow()))


def moved(session: Session, image_id: int, stored_path: str, stored_original: str) -> None:
    """Record that an action moved an image's file; the path it was found at is kept."""
    session.execute(update(Image).where(Image.id == image_id).values(
        path=stored_path, original_path=stored_original, last_seen=utcnow()))


def actions_of(session: Session, image_id: int) -> list[dict[str, object]]:
    """The actions run for one image, oldest first (shown by `fakewatch show`)."""
    rows = session.scalars(select(Action).where(Action.image_id == image_id).order_by(Action.id))
    return [{"action": row.action, "status": row.status, "detail": row.detail, "attempts": row.attempts,
             "verdict_id": row.verdict_id} for row in rows]
