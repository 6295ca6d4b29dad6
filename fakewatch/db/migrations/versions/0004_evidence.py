"""Evidence beside the classifier, and verdict reasons.

- evidence: what a file's metadata says about its origin, one row per content, analyzer version and
  finding (kind, strength, summary, details as JSON). A newer analyzer version adds rows; old ones stay.
- contents.evidence_version: which analyzer versions have read this content (so each runs once).
- verdicts.reason ("classifier" or "provenance") and verdicts.reason_detail: why the label is what it is.
- ix_verdicts_p_fake (p_fake, id): "most likely fake first" listings walk it instead of sorting every verdict.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_id", sa.Integer, sa.ForeignKey("contents.id"), nullable=False),
        sa.Column("analyzer", sa.String(32), nullable=False),
        sa.Column("analyzer_version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("strength", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("content_id", "analyzer", "analyzer_version", "kind", name="uq_evidence_finding"),
    )
    op.create_index("ix_evidence_content_id", "evidence", ["content_id"])
    op.create_index("ix_evidence_kind", "evidence", ["kind"])
    op.add_column("contents", sa.Column("evidence_version", sa.String(200), nullable=True))
    op.add_column("verdicts", sa.Column("reason", sa.String(16), nullable=False, server_default="classifier"))
    op.add_column("verdicts", sa.Column("reason_detail", sa.Text, nullable=True))
    op.create_index("ix_verdicts_p_fake", "verdicts", ["p_fake", "id"])


def downgrade() -> None:
    op.drop_index("ix_verdicts_p_fake", table_name="verdicts")
    with op.batch_alter_table("verdicts") as batch:
        batch.drop_column("reason_detail")
        batch.drop_column("reason")
    with op.batch_alter_table("contents") as batch:
        batch.drop_column("evidence_version")
    op.drop_index("ix_evidence_kind", table_name="evidence")
    op.drop_index("ix_evidence_content_id", table_name="evidence")
    op.drop_table("evidence")
