"""images.classified_at: when the image's content got its latest verdict, indexed for newest-first listings.

`fakewatch results` lists images newest verdict first. With the time on the image row and an index on
(classified_at, id), the first page and every following page (keyset pagination, `--after`) read a few
index entries instead of sorting every image.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("classified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE images SET classified_at = (SELECT max(v.created_at) FROM verdicts v "
               "WHERE v.content_id = images.content_id)")
    if op.get_bind().dialect.name == "postgresql":
        # newest first with unclassified images last: the order `results` asks for
        op.execute("CREATE INDEX ix_images_classified_at ON images (classified_at DESC NULLS LAST, id DESC)")
    else:
        op.create_index("ix_images_classified_at", "images", [sa.text("classified_at DESC"), sa.text("id DESC")])


def downgrade() -> None:
    op.drop_index("ix_images_classified_at", "images")
    op.drop_column("images", "classified_at")
