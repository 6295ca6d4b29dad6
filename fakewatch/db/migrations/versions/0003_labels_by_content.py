"""Labels record their content; decoder warnings, original paths and verdict actions; lossless names.

- labels.content_id: the content an analyst judged. A label applies to whatever path holds that content,
  and never to other content that later appears under the labelled name. Existing labels take the
  content their image has now.
- images.warnings: what the decoder reported about a file it could still read.
- images.original_path: where a file was found before a verdict action moved it (quarantine).
- actions: each verdict action (quarantine, command, webhook) run once per image and verdict.
- images.path: names that are not valid UTF-8 are stored escaped, with a backslash as the escape
  character, so existing names that hold a backslash are rewritten with it doubled.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.add_column(sa.Column("content_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_labels_content_id", "contents", ["content_id"], ["id"])
        batch.create_index("ix_labels_content_id", ["content_id"])
    op.execute("UPDATE labels SET content_id = "
               "(SELECT images.content_id FROM images WHERE images.id = labels.image_id)")
    op.add_column("images", sa.Column("warnings", sa.Text, nullable=True))
    op.add_column("images", sa.Column("original_path", sa.Text, nullable=True))
    op.execute(sa.text("UPDATE images SET path = replace(path, :one, :two) WHERE replace(path, :one, :two) <> path")
               .bindparams(one="\\", two="\\\\"))
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id"), nullable=False),
        sa.Column("verdict_id", sa.Integer, sa.ForeignKey("verdicts.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("image_id", "verdict_id", "action", name="uq_actions_image_verdict_action"),
    )


def downgrade() -> None:
    op.drop_table("actions")
    op.execute(sa.text("UPDATE images SET path = replace(path, :two, :one)").bindparams(one="\\", two="\\\\"))
    op.drop_column("images", "original_path")
    op.drop_column("images", "warnings")
    with op.batch_alter_table("labels") as batch:
        batch.drop_index("ix_labels_content_id")
        batch.drop_constraint("fk_labels_content_id", type_="foreignkey")
        batch.drop_column("content_id")
