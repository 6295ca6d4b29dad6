"""Schema migrations on databases that already hold data."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest
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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0006_backfills_the_kept_counts_and_its_triggers_go_on(tmp_path: Path, backend: str) -> None:
    from fakewatch.db import counts
    from fakewatch.db.session import Database
    from tests.integration.services import throwaway_postgres

    place = throwaway_postgres() if backend == "postgresql" else nullcontext(f"sqlite:///{tmp_path / 'old.db'}")
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with place as url:
        engine = make_engine(url)
        command.upgrade(_alembic_config(engine), "0005")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO contents (id, sha256, size, created_at) VALUES (1, 'a', 1, :t), "
                                    "(2, 'b', 1, :t), (3, 'c', 1, :t)"), {"t": moment})
            for image_id, content_id, status, deleted in ((1, 1, "done", None), (2, 1, "done", None),
                                                          (3, 2, "done", moment), (4, None, "error", None)):
                connection.execute(text("INSERT INTO images (id, path, content_id, status, error_kind, deleted_at, "
                                        "first_seen, last_seen) VALUES (:i, :p, :c, :s, :k, :d, :t, :t)"),
                                   {"i": image_id, "p": f"/x/{image_id}.jpg", "c": content_id, "s": status,
                                    "k": "corrupt" if status == "error" else None, "d": deleted, "t": moment})
            for content_id, label in ((1, "fake"), (2, "real")):
                connection.execute(text("INSERT INTO verdicts (content_id, classifier, label, p_fake, confidence, "
                                        "threshold, elapsed_ms, host, created_at) VALUES (:c, 'v1', :l, 0.9, 0.9, "
                                        "0.5, 1, 'h', :t)"), {"c": content_id, "l": label, "t": moment})
        upgrade(engine)
        database = Database(url)
        with database.session() as session:
            assert counts.labels(counts.image_groups(session)) == {"fake": 2, "unclassified": 1}
            assert counts.labels(counts.image_groups(session, include_deleted=True)) == {
                "fake": 2, "real": 1, "unclassified": 1}
            assert counts.contents(session) == 3 and counts.verdicts_by_classifier(session) == {"v1": 2}
        with engine.begin() as connection:  # the triggers keep them from here on
            connection.execute(text("INSERT INTO verdicts (content_id, classifier, label, p_fake, confidence, "
                                    "threshold, elapsed_ms, host, created_at) VALUES (1, 'v2', 'real', 0.1, 0.9, "
                                    "0.5, 1, 'h', :t)"), {"t": datetime(2026, 2, 1, tzinfo=UTC)})
        with database.session() as session:
            assert counts.labels(counts.image_groups(session)) == {"real": 2, "unclassified": 1}
            assert counts.verdicts_by_classifier(session) == {"v1": 2, "v2": 1}
        database.dispose()
        command.downgrade(_alembic_config(engine), "0005")  # and back: 0005's label trigger works again
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM verdicts WHERE classifier = 'v2'"))
            labels = dict(connection.execute(text("SELECT id, verdict_label FROM images")).all())
        assert labels[1] == labels[2] == "fake"
        engine.dispose()
