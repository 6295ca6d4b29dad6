"""Analysts' labels: the human judgements that `results --disagreements` and refreshes read."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fakewatch.db.common import utcnow
from fakewatch.db.tables import Image, Label

ANALYST_LABELS = ("fake", "real")


def add_label(session: Session, image: Image, label: str, author: str, note: str | None) -> None:
    """Record an analyst's judgement (fake or real) on an image."""
    if label not in ANALYST_LABELS:
        raise ValueError("an analyst label is 'fake' or 'real'")
    session.add(Label(image_id=image.id, label=label, author=author, note=note, created_at=utcnow()))
