"""Schema migrations on databases that already hold data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import text

from fakewatch.db.session import _alembic_config, is_current, make_engine, upgrade


def test_0002_backfills_classified_at_from_the_latest_verdict(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(_alembic_config(engine), "0001")
    assert not is_current(engine)
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO contents (id, sha256, size, created_at) VALUES (1, 'a', 1, :t), "
                                "(2, 'b', 1, :t)"), {"t": early})
        for image_id, content_id in ((1, 1), (2, 1), (3, 2)):
            connection.execute(text("INSERT INTO images (id, path, content_id, status, first_seen, last_seen) "
                                    "VALUES (:i, :p, :c, 'done', :t, :t)"),
                               {"i": image_id, "p": f"/x/{image_id}.jpg", "c": content_id, "t": early})
        for classifier, moment in (("v1", early), ("v2", late)):
            connection.execute(text("INSERT INTO verdicts (content_id, classifier, label, p_fake, confidence, "
                                    "threshold, elapsed_ms, host, created_at) VALUES (1, :c, 'fake', 0.9, 0.9, "
                                    "0.5, 1, 'h', :t)"), {"c": classifier, "t": moment})
    upgrade(engine)
    assert is_current(engine)
    with engine.connect() as connection:
        stamps = dict(connection.execute(text("SELECT id, classified_at FROM images")).all())
    assert stamps[1] is not None and stamps[1] == stamps[2] and str(stamps[1]).startswith("2026-03-01")
    assert stamps[3] is None  # never classified
