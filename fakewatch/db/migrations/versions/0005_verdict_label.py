"""images.verdict_label: the label of the image's current verdict, kept by the database itself.

An image's current verdict is its content's newest verdict (latest ``created_at``, then highest id), whichever
classifier gave it. Counting images per current label (`fakewatch stats`, `GET /api/v1/results/counts`) had
to find that verdict for every image: over a second on a million images. With the label on the image row,
kept current by triggers on both tables whatever code writes them, and a partial index on the live rows,
the count reads one index.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CURRENT = ("(SELECT v.label FROM verdicts v WHERE v.content_id = {content} "
           "ORDER BY v.created_at DESC, v.id DESC LIMIT 1)")
SQLITE_TRIGGERS = {
    # every image of the content takes its newest verdict's label
    "tr_verdicts_label_insert": "AFTER INSERT ON verdicts BEGIN {refresh_new} END",
    "tr_verdicts_label_update": "AFTER UPDATE OF content_id, label, created_at ON verdicts BEGIN "
                                "{refresh_old} {refresh_new} END",
    "tr_verdicts_label_delete": "AFTER DELETE ON verdicts BEGIN {refresh_old} END",
    # an image row that is new or points at other content looks its label up
    "tr_images_label_insert": "AFTER INSERT ON images WHEN NEW.content_id IS NOT NULL BEGIN "
                              "UPDATE images SET verdict_label = {current_new} WHERE id = NEW.id; END",
    "tr_images_label_update": "AFTER UPDATE OF content_id ON images BEGIN "
                              "UPDATE images SET verdict_label = {current_new} WHERE id = NEW.id; END",
}
POSTGRES_FUNCTIONS = f"""
CREATE FUNCTION fakewatch_verdicts_label() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE images SET verdict_label = {CURRENT.format(content="OLD.content_id")}
        WHERE content_id = OLD.content_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE images SET verdict_label = {CURRENT.format(content="NEW.content_id")}
        WHERE content_id = NEW.content_id;
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION fakewatch_images_label() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.verdict_label := {CURRENT.format(content="NEW.content_id")};
    RETURN NEW;
END $$;
CREATE TRIGGER tr_verdicts_label AFTER INSERT OR DELETE OR UPDATE OF content_id, label, created_at ON verdicts
    FOR EACH ROW EXECUTE FUNCTION fakewatch_verdicts_label();
CREATE TRIGGER tr_images_label BEFORE INSERT OR UPDATE OF content_id ON images
    FOR EACH ROW EXECUTE FUNCTION fakewatch_images_label();
"""


def _refresh(row: str) -> str:
    return (f"UPDATE images SET verdict_label = {CURRENT.format(content=f'{row}.content_id')} "
            f"WHERE content_id = {row}.content_id;")


def upgrade() -> None:
    op.add_column("images", sa.Column("verdict_label", sa.String(16), nullable=True))
    op.execute(f"UPDATE images SET verdict_label = {CURRENT.format(content='images.content_id')} "
               "WHERE content_id IS NOT NULL")
    op.create_index("ix_images_live_verdict_label", "images", ["verdict_label", "status"],
                    sqlite_where=sa.text("deleted_at IS NULL"), postgresql_where=sa.text("deleted_at IS NULL"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTIONS)
        return
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} " + body.format(refresh_new=_refresh("NEW"), refresh_old=_refresh("OLD"),
                                                           current_new=CURRENT.format(content="NEW.content_id")))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tr_verdicts_label ON verdicts; DROP TRIGGER tr_images_label ON images; "
                   "DROP FUNCTION fakewatch_verdicts_label(); DROP FUNCTION fakewatch_images_label();")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_images_live_verdict_label", "images")
    op.drop_column("images", "verdict_label")
