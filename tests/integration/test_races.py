"""Several intakes racing on the same files create no duplicate rows, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fakewatch.config import load_settings
from fakewatch.db.session import Database, make_engine, upgrade
from fakewatch.db.tables import Content, Image
from fakewatch.intake.record import Intake
from tests.integration.conftest import write_photos
from tests.integration.services import throwaway_postgres


class Recorder:
    stamps_on_record = False

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        self.ids = ids


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.db'}"
    else:
        with throwaway_postgres() as url:
            yield url


def test_racing_intakes_make_one_row_per_path_and_content(database_url: str, tmp_path: Path) -> None:
    upgrade(make_engine(database_url))
    paths = [str(path) for path in write_photos(tmp_path / "shared", 300)]
    for index in range(50):  # the same bytes under more names
        (tmp_path / "shared" / f"copy_{index}.jpg").write_bytes(Path(paths[index]).read_bytes())
    paths += [str(tmp_path / "shared" / f"copy_{index}.jpg") for index in range(50)]
    settings = load_settings({"home": str(tmp_path / "home"), "database_url": database_url}, env={})
    errors: list[BaseException] = []

    def racer(order: list[str]) -> None:
        database = Database(database_url, auto_upgrade=False)
        intake = Intake(settings, database, lambda: "some-classifier", Recorder())
        try:
            for start in range(0, len(order), 40):
                intake.process(order[start:start + 40])
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
        finally:
            database.dispose()

    racers = [threading.Thread(target=racer, args=(order,))
              for order in (paths, list(reversed(paths)), paths[150:] + paths[:150], paths)]
    for thread in racers:
        thread.start()
    for thread in racers:
        thread.join(120)
    assert not errors, errors
    database = Database(database_url, auto_upgrade=False)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 350
        assert session.scalar(select(func.count()).select_from(Content)) == 300
        assert session.scalar(select(func.count(func.distinct(Image.path)))) == 350
    database.dispose()
