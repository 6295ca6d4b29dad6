"""Fast versions of the fault suite (bench/faults.py) for embedded mode: a real `fakewatch watch` process
killed mid-drop and restarted, and a SQLite database whose disk fills up mid-run and is then grown."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from tests.conftest import wait_until
from tests.integration.conftest import write_photos
from tests.integration.services import FakewatchProcess

pytestmark = pytest.mark.timeout(300)


class WatchProcess(FakewatchProcess):
    """`fakewatch watch FOLDER` as a real subprocess."""

    def __init__(self, folder: Path, env: dict[str, str], log: Path) -> None:
        super().__init__(["watch", str(folder)], env, log)

    def wait_started(self) -> None:
        deadline = time.monotonic() + 60
        while "watching" not in self.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "watching" in self.output(), self.output()


def outcome(database_url: str) -> dict[str, int]:
    database = Database(database_url, auto_upgrade=False)
    try:
        with database.session() as session:
            per_content = select(func.count().label("n")).select_from(Verdict).group_by(
                Verdict.content_id, Verdict.classifier).subquery()
            return {"images": session.scalar(select(func.count()).select_from(Image)) or 0,
                    "done": session.scalar(select(func.count()).select_from(Image).where(Image.status == "done")) or 0,
                    "most_verdicts_per_content": session.scalar(select(func.max(per_content.c.n))) or 0}
    finally:
        database.dispose()


def done_so_far(database_url: str) -> int:
    try:
        return outcome(database_url)["done"]
    except Exception:  # noqa: BLE001 - the database may not exist yet
        return 0


def wait_done(database_url: str, expected: int, process: WatchProcess, timeout: float = 120) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts = {"done": 0}
    while time.monotonic() < deadline:
        try:
            counts = outcome(database_url)
        except Exception:  # noqa: BLE001 - the database may not exist yet
            pass
        if counts["done"] >= expected:
            return counts
        time.sleep(0.2)
    raise AssertionError(f"{counts} after {timeout} s:\n{process.output()[-3000:]}")


@pytest.fixture
def watch_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "FAKEWATCH_STABILITY_DELAY": "0.3", "FAKEWATCH_RESCAN_INTERVAL": "0",
            "FAKEWATCH_RETRY_MAX_DELAY": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture
def processes() -> Iterator[list[WatchProcess]]:
    started: list[WatchProcess] = []
    yield started
    for process in started:
        process.stop()


def test_watcher_killed_mid_drop_and_restarted_loses_nothing(tmp_path: Path, watch_env: dict[str, str],
                                                             processes: list[WatchProcess]) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    staged = write_photos(tmp_path / "staging", 300, seed=21)
    database_url = f"sqlite:///{watch_env['FAKEWATCH_HOME']}/fakewatch.db"
    first = WatchProcess(watched, watch_env, tmp_path / "watch1.log")
    processes.append(first)
    first.wait_started()
    for index, path in enumerate(staged):
        path.rename(watched / path.name)
        time.sleep(0.005)
        if index == 100:  # kill it once the first hundred are being recorded and classified
            assert wait_until(lambda: done_so_far(database_url) > 0, 60), first.output()[-3000:]
            first.kill()
    before = outcome(database_url)
    assert before["done"] < 300  # the kill struck mid-drop
    second = WatchProcess(watched, watch_env, tmp_path / "watch2.log")
    processes.append(second)
    counts = wait_done(database_url, 300, second)
    assert counts["images"] == 300 and counts["most_verdicts_per_content"] == 1


def test_sqlite_disk_full_is_waited_out_and_nothing_is_lost(tmp_path: Path, watch_env: dict[str, str],
                                                             processes: list[WatchProcess]) -> None:
    home = tmp_path / "small-disk"
    home.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(home)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.decode().strip()}")
    try:
        watched = tmp_path / "watched"
        watched.mkdir()
        env = {**watch_env, "FAKEWATCH_HOME": str(home)}
        database_url = f"sqlite:///{home}/fakewatch.db"
        watcher = WatchProcess(watched, env, tmp_path / "watch.log")
        processes.append(watcher)
        watcher.wait_started()
        for path in write_photos(tmp_path / "staging", 1000, seed=22):
            path.rename(watched / path.name)
        deadline = time.monotonic() + 120
        while "database or disk is full" not in watcher.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "database or disk is full" in watcher.output(), watcher.output()[-3000:]
        assert not wait_until(lambda: watcher.process.poll() is not None, 3)  # waits the outage out, alive
        assert outcome(database_url)["done"] < 1000
        subprocess.run(["mount", "-o", "remount,size=64m", str(home)], check=True)  # space freed
        counts = wait_done(database_url, 1000, watcher)
        assert counts["images"] == 1000 and counts["most_verdicts_per_content"] == 1
        watcher.stop()
    finally:
        subprocess.run(["umount", "-l", str(home)], capture_output=True)
