"""Hot-path statements (``Prepared``: plain SQLAlchemy, or on PostgreSQL the driver path where it is kept)
give the same answers on SQLite and PostgreSQL, for awkward names, times and long id lists."""

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
from fakewatch.intake.files import FileRecord
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


def test_outcome_counts_group_what_the_rows_say(database: Database, tmp_path: Path) -> None:
    """A scan's summary counts (status, error kind, latest label) in the database; the counts must add up
    to what reading every row gives, and the ids with errors come back in the order asked."""
    from fakewatch.db.results import outcome_counts, rows_for_ids

    records = [FileRecord(str(tmp_path / f"{index}.jpg"), 10, 1.5, sha256=f"{index % 5:064x}")
               for index in range(9)]  # five contents, some shared by several files
    with database.session() as session, session.begin():
        recorded = recording.record_files(session, records, "v1")
    ids = sorted(image_id for image_id, _ in recorded.values())
    moment = datetime(2026, 12, 4, tzinfo=UTC)
    with database.session() as session, session.begin():
        content_of = dict(session.execute(select(Image.id, Image.content_id)).all())
        labels = {content_of[ids[0]]: "fake", content_of[ids[1]]: "real", content_of[ids[2]]: "fake"}
        upsert(session, Verdict.__table__, [
            {"content_id": content_id, "classifier": "v1", "label": label, "p_fake": 0.5, "confidence": 0.5,
             "threshold": 0.5, "elapsed_ms": 1.0, "host": "h", "created_at": moment, "reason": "classifier",
             "reason_detail": None} for content_id, label in labels.items()], keys=["content_id", "classifier"])
        done = [image_id for image_id in ids if content_of[image_id] in labels]
        set_status(session, done, "done")
        set_status(session, [ids[-1], ids[3]], "error", "corrupt", "broken")
    asked = list(reversed(ids)) + [99_999]  # an id that does not exist counts for nothing
    with database.session() as session:
        counts, failed = outcome_counts(session, asked)
        rows = rows_for_ids(session, asked)
    expected: dict[tuple[str, str | None, str | None], int] = {}
    for row in rows:
        key = (row["status"], row["error_kind"], row["label"])
        expected[key] = expected.get(key, 0) + 1
    assert {(status, kind, label): count for status, kind, label, count in counts} == expected
    assert sum(count for *_, count in counts) == len(ids)
    assert ("done", None, "fake") in expected and ("error", "corrupt", None) in expected  # both kinds occur
    assert failed == [ids[-1], ids[3]]
    with database.session() as session:
        counts, failed = outcome_counts(session, ids[:3])
    assert {label for status, _, label, _ in counts} == {"fake", "real"} and failed == []
