"""SQLAlchemy tables. The database is the source of truth; the queue only carries image ids.

    images    one row per path ever seen (status, errors, first/last seen); points at its content
    contents  one row per distinct file content (sha256): the same bytes under two paths are one content
    verdicts  one row per (content, classifier version): history kept when a new version re-scans
    labels    analysts' judgements on contents (made on an image at a path; they follow the content)
    evidence  what a content's metadata says about its origin, per analyzer version (history kept)
    actions   verdict actions (quarantine, command hook, webhook): one row per image, verdict and action

    image_counts, verdict_counts, content_counts   how many rows of each kind there are, kept by triggers
              (migration 0006) so that counting reads a few rows, not a million
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from fakewatch.values import ActionStatus, EvidenceStrength, Reason, Status, VerdictLabel, choices

# the values the string columns hold (fakewatch.values defines them)
STATUSES = choices(Status)  # images.status
VERDICT_LABELS = choices(VerdictLabel)  # verdicts.label, images.verdict_label
VERDICT_REASONS = choices(Reason)  # verdicts.reason
ACTION_STATUSES = choices(ActionStatus)  # actions.status
EVIDENCE_STRENGTHS = choices(EvidenceStrength)  # evidence.strength


class Base(DeclarativeBase):
    pass


class Content(Base):
    __tablename__ = "contents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    evidence_version: Mapped[str | None] = mapped_column(String(200))  # analyzer versions that read it

    verdicts: Mapped[list[Verdict]] = relationship(back_populates="content", order_by="Verdict.created_at")


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    content_id: Mapped[int | None] = mapped_column(ForeignKey("contents.id"), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING.value)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # when the content got its latest verdict (any classifier); indexed (migration 0002) for listings
    classified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warnings: Mapped[str | None] = mapped_column(Text)  # what the decoder reported about a readable file
    original_path: Mapped[str | None] = mapped_column(Text)  # where it was found, if an action moved it
    # the label of the content's newest verdict, kept by triggers (migration 0005) for fast counts
    verdict_label: Mapped[str | None] = mapped_column(String(16))

    content: Mapped[Content | None] = relationship()

    __table_args__ = (
        Index("ix_images_status_queued", "status", "queued_at"),
        Index("ix_images_live_verdict_label", "verdict_label", "status", sqlite_where=text("deleted_at IS NULL"),
              postgresql_where=text("deleted_at IS NULL")),
    )


class Verdict(Base):
    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("contents.id"))
    classifier: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(16))
    p_fake: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    elapsed_ms: Mapped[float] = mapped_column(Float)
    host: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(16), default=Reason.CLASSIFIER.value,
                                        server_default=Reason.CLASSIFIER.value)
    reason_detail: Mapped[str | None] = mapped_column(Text)  # the proof's summary when reason is provenance

    content: Mapped[Content] = relationship(back_populates="verdicts")

    __table_args__ = (
        UniqueConstraint("content_id", "classifier", name="uq_verdicts_content_classifier"),
        Index("ix_verdicts_label_created", "label", "created_at"),
        Index("ix_verdicts_created", "created_at"),
        Index("ix_verdicts_content_created", "content_id", "created_at"),
        Index("ix_verdicts_p_fake", "p_fake", "id"),
    )


class Label(Base):
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)  # where it was made
    content_id: Mapped[int | None] = mapped_column(ForeignKey("contents.id"), index=True)  # what was judged
    label: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))



class Action(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    verdict_id: Mapped[int] = mapped_column(ForeignKey("verdicts.id"))
    action: Mapped[str] = mapped_column(String(16))  # quarantine, command or webhook
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("image_id", "verdict_id", "action", name="uq_actions_image_verdict_action"),)



class Evidence(Base):
    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("contents.id"), index=True)
    analyzer: Mapped[str] = mapped_column(String(32))
    analyzer_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(48), index=True)
    strength: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("content_id", "analyzer", "analyzer_version", "kind",
                                       name="uq_evidence_finding"),)


class ImageCount(Base):
    """Images per (deleted, status, error kind, current verdict label); '' stands for none."""

    __tablename__ = "image_counts"

    deleted: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    error_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class VerdictCount(Base):
    """Verdicts per classifier version."""

    __tablename__ = "verdict_counts"

    classifier: Mapped[str] = mapped_column(String(128), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class ContentCount(Base):
    """Distinct contents: one row."""

    __tablename__ = "content_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
