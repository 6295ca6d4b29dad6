"""Verdict actions in the database: claimed once per image, verdict and action, then finished.

A claim inserts one row per (image, verdict, action) carrying a fresh token; the rows that come back with
that token are this caller's to run. A second worker, a redelivered task or a re-scan finds the rows
already there and runs nothing, so an action runs at most once per image and verdict.

In distributed mode the claim's ids and token travel in a ``fakewatch.act`` task; the worker that runs it
first takes them (:func:`take`), which restarts their clock, and a message whose claim was since retried
(its token no longer matches) runs nothing.

An action whose process stopped before it finished is taken up again once, by :func:`reclaim` (when a
process that runs actions starts, and periodically in workers and distributed watchers): rows left
``pending`` by a shutdown or an unsent task, and rows still ``running`` long after their time ran out (a
killed process). A retried claim carries a ``retry`` token; one that is interrupted again is failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session

from fakewatch.db.common import among, classifier_names, upsert, utcnow
from fakewatch.db.tables import Action, Content, Image, Verdict

CLAIMED = "claimed "  # detail of a first claim while it runs
RETRY = "retry "  # detail of the one retry of an interrupted action while it runs
INTERRUPTED = "interrupted: fakewatch stopped before it finished"


@dataclass(frozen=True)
class Claim:
    """One action this caller runs: on which image (its path and content then), for which verdict."""

    action_id: int
    action: str
    image_id: int
    verdict_id: int
    stored_path: str
    sha256: str = ""  # the judged content (quarantine moves that content only)
    token: str = ""  # the claim's detail while it runs

    @property
    def retry(self) -> bool:
        return self.token.startswith(RETRY)


def _claims_with(session: Session, token: str, actions: Sequence[str]) -> list[Claim]:
    """The rows claimed with ``token``, with their image's path and content (in image and action order)."""
    won = session.execute(select(Action.id, Action.action, Action.image_id, Action.verdict_id, Image.path,
                                 Content.sha256)
                          .join(Image, Image.id == Action.image_id)
                          .join(Content, Content.id == Image.content_id, isouter=True)
                          .where(Action.detail == token)).all()
    order = {name: index for index, name in enumerate(actions)}
    claims = [Claim(row.id, row.action, row.image_id, row.verdict_id, row.path, row.sha256 or "", token)
              for row in won]
    return sorted(claims, key=lambda item: (item.image_id, order.get(item.action, len(order))))


def claim(session: Session, image_ids: Sequence[int], classifier: str | Sequence[str], labels: Sequence[str],
          actions: Sequence[str]) -> list[Claim]:
    """Claim ``actions`` for the images among ``image_ids`` whose verdict from ``classifier`` (one version
    id, or several) has one of
    ``labels``; returns the claims this call won (in image order, actions in the order given)."""
    if not image_ids or not actions or not labels:
        return []
    names = classifier_names(classifier)
    rows = session.execute(select(Image.id, Verdict.id.label("verdict_id"))
                           .join(Verdict, Verdict.content_id == Image.content_id)
                           .where(among(session, Image.id, list(image_ids)), Verdict.classifier.in_(names),
                                  Verdict.label.in_(list(labels)), Image.deleted_at.is_(None))).all()
    if not rows:
        return []
    token = f"{CLAIMED}{uuid.uuid4().hex}"
    now = utcnow()
    upsert(session, Action.__table__, sorted(
        ({"image_id": row.id, "verdict_id": row.verdict_id, "action": name, "status": "running", "detail": token,
          "attempts": 0, "created_at": now, "finished_at": None} for row in rows for name in actions),
        key=lambda item: (item["image_id"], item["action"])), keys=["image_id", "verdict_id", "action"])
    return _claims_with(session, token, actions)


def reclaim(session: Session, longest: Mapping[str, float]) -> tuple[list[Claim], int]:
    """Take up the actions named in ``longest`` (action -> seconds it may run) that a stopped process left
    behind: ``pending`` ones, and ``running`` ones claimed longer ago than their time. Each is retried once:
    returns the claims to run again, and how many were failed because their retry was interrupted too."""
    now = utcnow()
    overdue = or_(*(and_(Action.action == name, Action.created_at < now - timedelta(seconds=seconds))
                    for name, seconds in longest.items()))
    live = select(Image.id).where(Image.deleted_at.is_(None))
    given_up = session.execute(update(Action).where(
        Action.status == "running", Action.detail.like(f"{RETRY}%"), overdue).values(
        status="failed", detail=f"{INTERRUPTED}, twice; not retried again", finished_at=now))
    token = f"{RETRY}{uuid.uuid4().hex}"
    session.execute(update(Action).where(
        Action.action.in_(list(longest)), Action.image_id.in_(live),
        or_(Action.status == "pending", and_(Action.status == "running", Action.detail.like(f"{CLAIMED}%"),
                                              overdue))).values(
        status="running", detail=token, created_at=now, finished_at=None).execution_options(
        synchronize_session=False))
    return _claims_with(session, token, list(longest)), int(cast(CursorResult[Any], given_up).rowcount)


def take(session: Session, action_ids: Sequence[int], token: str, actions: Sequence[str]) -> list[Claim]:
    """Start running the claims among ``action_ids`` still held by ``token``: their clock restarts now (a
    claim that waited in the queue is not taken for abandoned while it runs). Claims reclaimed or finished
    meanwhile are not returned."""
    if not action_ids:
        return []
    session.execute(update(Action).where(Action.id.in_(list(action_ids)), Action.status == "running",
                                         Action.detail == token).values(created_at=utcnow())
                    .execution_options(synchronize_session=False))
    wanted = set(action_ids)
    return [claim for claim in _claims_with(session, token, actions) if claim.action_id in wanted]


def unsent(session: Session, claims: Sequence[Claim], reason: str) -> None:
    """Record claims whose task could not be queued as ``pending``: the next sweep sends them again (nothing
    ran, so this does not use up their one retry)."""
    for claim in claims:
        session.execute(update(Action).where(Action.id == claim.action_id, Action.status == "running",
                                             Action.detail == claim.token)
                        .values(status="pending", detail=f"not queued: {reason}"[:2000]))


def finish(session: Session, action_id: int, status: str, detail: str, attempts: int) -> None:
    """Record an action's outcome (``done``, ``failed`` or ``skipped``), unless another claim has since
    finished it."""
    session.execute(update(Action).where(Action.id == action_id, Action.status.in_(("running", "pending")))
                    .values(status=status, detail=detail[:2000], attempts=attempts, finished_at=utcnow()))


def interrupted(session: Session, claim: Claim, attempts: int = 0) -> None:
    """Record that a shutdown cut ``claim`` short: ``pending`` (retried at the next start), or ``failed``
    when this was already its retry. A claim that finished meanwhile keeps its outcome."""
    status, detail = ("failed", f"{INTERRUPTED}, twice; not retried again") if claim.retry else \
        ("pending", f"{INTERRUPTED}; retried at the next start")
    session.execute(update(Action).where(Action.id == claim.action_id, Action.status == "running",
                                         Action.detail == claim.token)
                    .values(status=status, detail=detail, attempts=attempts, finished_at=utcnow()))


def path_taken(session: Session, stored_path: str) -> bool:
    """Whether an image row (live or deleted) holds ``stored_path``."""
    return session.scalar(select(Image.id).where(Image.path == stored_path)) is not None


def moved(session: Session, image_id: int, stored_path: str, stored_original: str) -> bool:
    """Record that an action moved an image's file; the path it was found at is kept. False, and nothing
    recorded, when another row holds ``stored_path`` already."""
    if path_taken(session, stored_path):
        return False
    session.execute(update(Image).where(Image.id == image_id).values(
        path=stored_path, original_path=stored_original, last_seen=utcnow()))
    return True


def actions_of(session: Session, image_id: int) -> list[dict[str, object]]:
    """The actions run for one image, oldest first (shown by `fakewatch show`)."""
    rows = session.scalars(select(Action).where(Action.image_id == image_id).order_by(Action.id))
    return [{"action": row.action, "status": row.status, "detail": row.detail, "attempts": row.attempts,
             "verdict_id": row.verdict_id} for row in rows]
