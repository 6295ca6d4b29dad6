"""Counts kept by the database: images per (deleted, status, error kind, current label), verdicts per
classifier, and contents.

`fakewatch stats` and `GET /api/v1/results/counts` read these few rows instead of counting a million. The
triggers run in the writing transaction, whatever code writes, so the counts are exact when it commits.
SQLite has one writer at a time and row triggers. PostgreSQL gets statement triggers with transition
tables: a statement's changes are summed per key and applied in key order (``n = n + delta``, the row
inserted on demand), so a chunk of ten thousand rows touches each counter row once, and concurrent writers
take the counter rows in the same order. The verdict trigger of migration 0005 becomes a statement trigger
for the same reason: one update of the images per verdict statement, not one per verdict.

Absent values are stored as '' (key columns are NOT NULL so that ON CONFLICT matches them); rows that fall
to zero stay, and readers skip them.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

IMAGE_KEY = ("deleted", "status", "error_kind", "label")


def _image_key(row: str) -> str:
    return (f"{row}.deleted_at IS NOT NULL, {row}.status, coalesce({row}.error_kind, ''), "
            f"coalesce({row}.verdict_label, '')")


def _sqlite_add(table: str, key: tuple[str, ...], values: str, delta: int) -> str:
    return (f"INSERT INTO {table} ({', '.join(key)}, n) VALUES ({values}, {delta}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET n = n + excluded.n;")


IMAGE_KEY_CHANGED = ("OLD.status IS NOT NEW.status OR OLD.error_kind IS NOT NEW.error_kind "
                     "OR OLD.verdict_label IS NOT NEW.verdict_label "
                     "OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)")
SQLITE_TRIGGERS = {
    "tr_images_count_insert": "AFTER INSERT ON images BEGIN "
                              + _sqlite_add("image_counts", IMAGE_KEY, _image_key("NEW"), 1) + " END",
    "tr_images_count_update": "AFTER UPDATE OF status, error_kind, verdict_label, deleted_at ON images "
                              f"WHEN {IMAGE_KEY_CHANGED} BEGIN "
                              + _sqlite_add("image_counts", IMAGE_KEY, _image_key("OLD"), -1) + " "
                              + _sqlite_add("image_counts", IMAGE_KEY, _image_key("NEW"), 1) + " END",
    "tr_images_count_delete": "AFTER DELETE ON images BEGIN "
                              + _sqlite_add("image_counts", IMAGE_KEY, _image_key("OLD"), -1) + " END",
    "tr_verdicts_count_insert": "AFTER INSERT ON verdicts BEGIN "
                                + _sqlite_add("verdict_counts", ("classifier",), "NEW.classifier", 1) + " END",
    "tr_verdicts_count_update": "AFTER UPDATE OF classifier ON verdicts WHEN OLD.classifier <> NEW.classifier "
                                "BEGIN " + _sqlite_add("verdict_counts", ("classifier",), "OLD.classifier", -1)
                                + " " + _sqlite_add("verdict_counts", ("classifier",), "NEW.classifier", 1) + " END",
    "tr_verdicts_count_delete": "AFTER DELETE ON verdicts BEGIN "
                                + _sqlite_add("verdict_counts", ("classifier",), "OLD.classifier", -1) + " END",
    "tr_contents_count_insert": "AFTER INSERT ON contents BEGIN UPDATE content_counts SET n = n + 1; END",
    "tr_contents_count_delete": "AFTER DELETE ON contents BEGIN UPDATE content_counts SET n = n - 1; END",
}


def _postgres_add(table: str, key: tuple[str, ...], key_of: Callable[[str], str], changes: dict[str, int]) -> str:
    """One statement adding, per key, the rows of the transition tables in ``changes`` times their sign."""
    columns = ", ".join(key)
    numbered = ", ".join(str(i + 1) for i in range(len(key)))
    parts = " UNION ALL ".join(f"SELECT {key_of(rows)}, {sign} FROM {rows}"
                               for rows, sign in changes.items())
    return (f"INSERT INTO {table} AS counted ({columns}, n) "
            f"SELECT {columns}, sum(delta) FROM ({parts}) AS changes ({columns}, delta) "
            f"GROUP BY {numbered} HAVING sum(delta) <> 0 ORDER BY {numbered} "
            f"ON CONFLICT ({columns}) DO UPDATE SET n = counted.n + excluded.n;")


def _postgres_function(name: str, table: str, key: tuple[str, ...], key_of: Callable[[str], str]) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_postgres_add(table, key, key_of, {"new_rows": 1})}
    ELSIF TG_OP = 'DELETE' THEN
        {_postgres_add(table, key, key_of, {"old_rows": -1})}
    ELSE
        {_postgres_add(table, key, key_of, {"new_rows": 1, "old_rows": -1})}
    END IF;
    RETURN NULL;
END $$;"""


TRANSITIONS = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
               "DELETE": "OLD TABLE AS old_rows"}


def _postgres_triggers(table: str, kind: str, function: str) -> str:
    """Statement triggers for each event on ``table`` (transition tables allow no list of columns)."""
    return "\n".join(f"CREATE TRIGGER tr_{table}_{kind}_{event.lower()} AFTER {event} ON {table} "
                     f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
                     for event, transition in TRANSITIONS.items())

NEWEST_LABEL = ("(SELECT v.label FROM verdicts v WHERE v.content_id = images.content_id "
                "ORDER BY v.created_at DESC, v.id DESC LIMIT 1)")


def _postgres_refresh(rows: str) -> str:
    # = ANY(ARRAY(...)): the planner knows nothing of a transition table's size and would scan all images
    return (f"UPDATE images SET verdict_label = {NEWEST_LABEL} WHERE content_id = ANY(ARRAY("
            f"SELECT DISTINCT content_id FROM {rows})) AND verdict_label IS DISTINCT FROM {NEWEST_LABEL};")


POSTGRES = f"""
{_postgres_function("fakewatch_count_images", "image_counts", IMAGE_KEY, _image_key)}
{_postgres_function("fakewatch_count_verdicts", "verdict_counts", ("classifier",), lambda rows: f"{rows}.classifier")}
CREATE FUNCTION fakewatch_count_contents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE content_counts SET n = n + (SELECT count(*) FROM new_rows);
    ELSE
        UPDATE content_counts SET n = n - (SELECT count(*) FROM old_rows);
    END IF;
    RETURN NULL;
END $$;
{_postgres_triggers("images", "count", "fakewatch_count_images")}
{_postgres_triggers("verdicts", "count", "fakewatch_count_verdicts")}
CREATE TRIGGER tr_contents_count_insert AFTER INSERT ON contents REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fakewatch_count_contents();
CREATE TRIGGER tr_contents_count_delete AFTER DELETE ON contents REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fakewatch_count_contents();

DROP TRIGGER tr_verdicts_label ON verdicts;
DROP FUNCTION fakewatch_verdicts_label();
CREATE FUNCTION fakewatch_verdicts_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {_postgres_refresh("old_rows")}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {_postgres_refresh("new_rows")}
    END IF;
    RETURN NULL;
END $$;
{_postgres_triggers("verdicts", "labels", "fakewatch_verdicts_labels")}
"""
# migration 0005's row trigger, for the downgrade
POSTGRES_ROW_LABELS = """
CREATE FUNCTION fakewatch_verdicts_label() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE images SET verdict_label = (SELECT v.label FROM verdicts v WHERE v.content_id = OLD.content_id
            ORDER BY v.created_at DESC, v.id DESC LIMIT 1) WHERE content_id = OLD.content_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE images SET verdict_label = (SELECT v.label FROM verdicts v WHERE v.content_id = NEW.content_id
            ORDER BY v.created_at DESC, v.id DESC LIMIT 1) WHERE content_id = NEW.content_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tr_verdicts_label AFTER INSERT OR DELETE OR UPDATE OF content_id, label, created_at ON verdicts
    FOR EACH ROW EXECUTE FUNCTION fakewatch_verdicts_label();
"""


def upgrade() -> None:
    op.create_table("image_counts",
                    sa.Column("deleted", sa.Boolean(), primary_key=True),
                    sa.Column("status", sa.String(16), primary_key=True),
                    sa.Column("error_kind", sa.String(32), primary_key=True),
                    sa.Column("label", sa.String(16), primary_key=True),
                    sa.Column("n", sa.BigInteger(), nullable=False))
    op.create_table("verdict_counts",
                    sa.Column("classifier", sa.String(128), primary_key=True),
                    sa.Column("n", sa.BigInteger(), nullable=False))
    op.create_table("content_counts",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("n", sa.BigInteger(), nullable=False))
    # backfill in the migration's transaction; PostgreSQL's lock keeps writers out until the triggers exist
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("LOCK TABLE images, verdicts, contents IN SHARE ROW EXCLUSIVE MODE")
    op.execute(f"INSERT INTO image_counts ({', '.join(IMAGE_KEY)}, n) SELECT {_image_key('images')}, count(*) "
               "FROM images GROUP BY 1, 2, 3, 4")
    op.execute("INSERT INTO verdict_counts (classifier, n) SELECT classifier, count(*) FROM verdicts "
               "GROUP BY classifier")
    op.execute("INSERT INTO content_counts (id, n) SELECT 1, count(*) FROM contents")
    if postgres:
        op.execute(POSTGRES)
        return
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("images", "verdicts"):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER tr_{table}_count_{event} ON {table}")
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER tr_verdicts_labels_{event} ON verdicts")
        op.execute("DROP TRIGGER tr_contents_count_insert ON contents; DROP TRIGGER tr_contents_count_delete "
                   "ON contents; DROP FUNCTION fakewatch_count_images(); DROP FUNCTION fakewatch_count_verdicts(); "
                   "DROP FUNCTION fakewatch_count_contents(); DROP FUNCTION fakewatch_verdicts_labels();")
        op.execute(POSTGRES_ROW_LABELS)
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    for table in ("content_counts", "verdict_counts", "image_counts"):
        op.drop_table(table)
