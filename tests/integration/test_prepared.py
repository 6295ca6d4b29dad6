"""Hot-path statements run through the database driver (``Prepared``): the same answers as SQLAlchemy
would give, on SQLite and PostgreSQL, for awkward names, times and long id lists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from fakewatch.db import recording
from fakewatch.db.common import as_utc, upsert
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from fakewatch.db.verdicts import classified_contents, set_status, verdict_times
from fakewatch.watcher.intake import FileRecord
from tests.integration.services import throwaway_postgres

NAMES = ["plain.jpg", "café ünïcode.jpg", "quote\"and'apostrophe.jpg", "emoji 🦊.png", "back\\slash.jpg",
         "comma,[bracket].jpg", "new\nline.jpg"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'prepared.db'}")
        return
    with throwaway_postgres() as url:
        database = Database(url, auto_upgrade=True)
        yield database
        database.dispose()


def test_prepared_statements_match_every_name_time_and_list(database: Database, tmp_path: Path) -> None:
    records = [FileRecord(str(tmp_path / name), 10 + index, 1.5, sha256=f"{index:064x}")
               for index, name in enumerate(NAMES)]
    with database.session() as session, session.begin():
        recorded = recording.record_files(session, records, "v1")
    assert set(recorded) == {record.path for record in records}  # every awkward name found again
    assert {status for _, status in recorded.values()} == {"pending"}
    ids = sorted(image_id for image_id, _ in recorded.values())
    moment = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)
    with database.session() as session, session.begin():
        # far more ids than SQLite takes as separate parameters (32,766): one JSON array carries them
        set_status(session, list(range(10_000_000, 10_040_000)) + ids[:3], "done", classified_at=moment)
        set_status(session, ids[3:], "error", "corrupt", "broken")
        content_ids = [content_id for content_id, in session.execute(select(Image.content_id))]
        upsert(session, Verdict.__table__, [
            {"content_id": content_ids[0], "classifier": "v2", "label": "fake", "p_fake": 0.9, "confidence": 0.9,
             "threshold": 0.5, "elapsed_ms": 1.0, "host": "h", "created_at": moment, "reason": "classifier",
             "reason_detail": None}], keys=["content_id", "classifier"])
    with database.session() as session:
        rows = {row.id: row for row in session.execute(select(Image.id, Image.status, Image.error_kind,
                                                              Image.classified_at))}
        assert [rows[i].status for i in ids] == ["done"] * 3 + ["error"] * (len(ids) - 3)
        assert [as_utc(rows[i].classified_at) for i in ids[:3]] == [moment] * 3  # microseconds kept
        assert rows[ids[-1]].error_kind == "corrupt" and rows[ids[-1]].classified_at is None
        assert classified_contents(session, content_ids, ["v1", "v2"]) == {content_ids[0]}
        assert classified_contents(session, content_ids, "v1") == set()
        times = verdict_times(session, content_ids)  # the driver's text times come back as the ORM's
        assert list(times) == [content_ids[0]] and as_utc(times[content_ids[0]]["v2"]) == moment
    with database.session() as session, session.begin():  # recorded again: the judged content is done at once
        again = recording.record_files(session, records, ["v2", "v3"])
    with database.session() as session:
        stamps = dict(session.execute(select(Image.id, Image.classified_at)).all())
    judged = [image_id for image_id, status in again.values() if status == "done"]
    assert len(judged) == 1 and as_utc(stamps[judged[0]]) == moment
