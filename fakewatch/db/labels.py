"""Analysts' labels: the human judgements that `results --disagreements` and refreshes read.

A label is made on an image (a path) but records the content it judged: it applies wherever that content
is found, and never to other bytes that later take the labelled name.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from fakewatch.db.common import utcnow
from fakewatch.db.tables import Image, Label
from fakewatch.values import AnalystLabel, choices

ANALYST_LABELS = choices(AnalystLabel)


def add_label(session: Session, image: Image, label: str, author: str, note: str | None) -> None:
    """Record an analyst's judgement (fake or real) on an image."""
    if label not in ANALYST_LABELS:
        raise ValueError("an analyst label is 'fake' or 'real'")
    session.add(Label(image_id=image.id, content_id=image.content_id, label=label, author=author, note=note,
                      created_at=utcnow()))


def label_image(session: Session, image_id: int, label: str, author: str, note: str | None) -> bool:
    """Record an analyst's judgement on the image with id ``image_id``; False if there is none."""
    image = session.get(Image, image_id)
    if image is None:
        return False
    add_label(session, image, label, author, note)
    return True


def labels_of(image: Image) -> ColumnElement[bool]:
    """The labels that apply to ``image``: made for its content (or, for a file that was never read, on it)."""
    if image.content_id is None:
        return (Label.image_id == image.id) & Label.content_id.is_(None)
    return Label.content_id == image.content_id


def hand_over(session: Session, old_image_id: int, new_image_id: int) -> None:
    """Before an image row is dropped (another file was renamed onto its path), its labels move to the row
    that now holds the path; they keep the content they were made for, so they do not judge the newcomer."""
    session.execute(update(Label).where(Label.image_id == old_image_id).values(image_id=new_image_id))



