"""The watch daemon against a real folder: slow writers, moves, renames, deletions, restarts, bad files."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from fakewatch.db.tables import Content, Image, Label, Verdict
from fakewatch.errors import QueueError
from fakewatch.mode import open_mode
from fakewatch.names import to_stored
from fakewatch.watcher.observer import Watcher
from tests.integration.conftest import write_photos
from tests.integration.test_actions import slow_webhook  # noqa: F401 - a fixture used below


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class Daemon:
    def __init__(self, folder: Path, settings) -> None:  # type: ignore[no-untyped-def]
        self.folder = folder
        self.mode = open_mode(settings)
        self.intake = self.mode.intake
        self.watcher: Watcher | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.watcher = Watcher(self.intake, [str(self.folder)])
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)
        self.thread.start()
        assert self.watcher.started.wait(60), "watcher did not finish its catch-up scan"

    def stop(self) -> None:
        assert self.watcher is not None and self.thread is not None
        self.watcher.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()

    def image(self, path: Path) -> Image | None:
        with self.intake.database.session() as session:
            return session.scalar(select(Image).where(Image.path == to_stored(str(path))))

    def done(self, path: Path) -> bool:
        image = self.image(path)
        return image is not None and image.status in ("done", "error")

    def count(self, table) -> int:  # type: ignore[no-untyped-def]
        with self.intake.database.session() as session:
            return session.scalar(select(func.count()).select_from(table))


@pytest.fixture
def daemon(tmp_path: Path, env_settings) -> Iterator[Daemon]:  # type: ignore[no-untyped-def]
    folder = tmp_path / "watched"
    folder.mkdir()
    settings = env_settings.replace(stability_delay=0.5, rescan_interval=0)
    running = Daemon(folder, settings)
    yield running
    if running.thread is not None and running.thread.is_alive():
        running.stop()
    running.mode.close()


def test_slowly_written_file_is_read_once_complete(daemon: Daemon, tmp_path: Path) -> None:
    (source,) = write_photos(tmp_path / "src", 1)
    data = source.read_bytes() + b"\x00" * 2000  # trailing padding after the JPEG is legal and makes it longer
    daemon.start()
    target = daemon.folder / "slow.jpg"
    with open(target, "wb") as handle:
        for start in range(0, len(data), len(data) // 8):
            handle.write(data[start:start + len(data) // 8])
            handle.flush()
            time.sleep(0.2)  # pauses shorter than the stability delay
    wait_for(lambda: daemon.done(target))
    image = daemon.image(target)
    assert image is not None and image.status == "done"
    with daemon.intake.database.session() as session:
        assert session.scalar(select(Content.sha256).where(Content.id == image.content_id)) == \
            hashlib.sha256(data).hexdigest()
    assert daemon.count(Content) == 1 and daemon.count(Verdict) == 1


def test_moves_renames_and_deletions(daemon: Daemon, tmp_path: Path) -> None:
    outside = write_photos(tmp_path / "outside", 2)
    daemon.start()
    moved_in = daemon.folder / "moved.jpg"
    os.rename(outside[0], moved_in)
    wait_for(lambda: daemon.done(moved_in))
    original = daemon.image(moved_in)
    assert original is not None

    renamed = daemon.folder / "renamed.jpg"
    os.rename(moved_in, renamed)
    wait_for(lambda: daemon.image(renamed) is not None)
    kept = daemon.image(renamed)
    assert kept is not None and kept.id == original.id and kept.content_id == original.content_id
    assert daemon.image(moved_in) is None
    assert daemon.count(Verdict) == 1  # a rename is not a new image

    download = daemon.folder / "download.jpg.part"
    download.write_bytes(outside[1].read_bytes())
    (sentinel,) = write_photos(daemon.folder, 1, seed=9, start=700)  # arrives after the download started
    wait_for(lambda: daemon.done(sentinel))  # so the download's events have been handled by now
    assert daemon.image(download) is None  # temp files are ignored
    finished = daemon.folder / "download.jpg"
    os.rename(download, finished)
    wait_for(lambda: daemon.done(finished))

    renamed.unlink()
    wait_for(lambda: (image := daemon.image(renamed)) is not None and image.deleted_at is not None)
    assert daemon.thread is not None and daemon.thread.is_alive()


def test_a_rename_onto_a_labelled_path_keeps_the_label_with_its_content(daemon: Daemon) -> None:
    from fakewatch.db.labels import add_label
    from fakewatch.db.results import image_record

    daemon.start()
    first, second = write_photos(daemon.folder, 2, seed=12)
    wait_for(lambda: daemon.done(first) and daemon.done(second))
    labelled = daemon.image(first)
    assert labelled is not None
    with daemon.intake.database.session() as session, session.begin():
        add_label(session, session.get(Image, labelled.id), "real", "analyst", "checked the camera original")
    os.rename(second, first)  # another picture takes the labelled name
    wait_for(lambda: daemon.image(second) is None and (image := daemon.image(first)) is not None
             and image.content_id != labelled.content_id)
    os.rename(first, daemon.folder / "third.jpg")  # and moves on again: the watcher is alive
    wait_for(lambda: daemon.image(daemon.folder / "third.jpg") is not None)
    assert daemon.thread is not None and daemon.thread.is_alive()
    with daemon.intake.database.session() as session:
        newcomer = session.scalar(select(Image).where(Image.path == str(daemon.folder / "third.jpg")))
        assert newcomer is not None and image_record(session, newcomer)["labels"] == []  # never judged
        (label,) = session.scalars(select(Label)).all()
        assert label.content_id == labelled.content_id  # still the content the analyst looked at
    write_photos(daemon.folder / "again", 1, seed=12)  # the labelled content comes back under a new name
    again = daemon.folder / "again" / "img_0000.jpg"
    wait_for(lambda: daemon.done(again))
    with daemon.intake.database.session() as session:
        back = session.scalar(select(Image).where(Image.path == str(again)))
        assert back is not None and back.content_id == labelled.content_id
        assert [item["label"] for item in image_record(session, back)["labels"]] == ["real"]


def test_files_deleted_while_the_watcher_was_down_are_marked(daemon: Daemon) -> None:
    daemon.start()
    kept, removed = write_photos(daemon.folder, 2, seed=13)
    wait_for(lambda: daemon.done(kept) and daemon.done(removed))
    daemon.stop()
    removed.unlink()
    daemon.start()
    gone = daemon.image(removed)
    assert gone is not None and gone.deleted_at is not None
    still = daemon.image(kept)
    assert still is not None and still.deleted_at is None


def test_restart_catches_up_and_resumes_pending(daemon: Daemon) -> None:
    daemon.start()
    first = write_photos(daemon.folder, 2)
    wait_for(lambda: all(daemon.done(path) for path in first))
    daemon.stop()

    while_down = write_photos(daemon.folder, 3, seed=7, start=50)
    leftover = write_photos(daemon.folder / "sub", 1, seed=8, start=90)[0]
    daemon.intake.record([str(leftover)])  # accepted (recorded pending) but never classified before a stop
    assert daemon.image(leftover).status == "pending"  # type: ignore[union-attr]

    daemon.start()  # catch-up runs before `started` is set
    for path in [*while_down, leftover]:
        assert daemon.done(path), path
    assert daemon.count(Verdict) == 6


class FlakyDispatcher:
    """The real in-process dispatcher behind a broker that refuses the first ``failures`` calls."""

    def __init__(self, inner, failures: int, error: Exception) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.failures = failures
        self.error = error
        self.calls: list[str] = []

    def _maybe_fail(self, what: str) -> None:
        self.calls.append(what)
        if self.failures > 0:
            self.failures -= 1
            raise self.error

    @property
    def stamps_on_record(self) -> bool:
        return bool(self.inner.stamps_on_record)

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        self._maybe_fail("submit")
        self.inner.submit(ids, force, stamped)

    def sweep(self) -> int:
        self._maybe_fail("sweep")
        return self.inner.sweep()

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("error", [QueueError("broker down"),
                                   OperationalError("SELECT 1", {}, Exception("database restarting"))],
                         ids=["broker", "database"])
def test_catch_up_and_sweep_failures_are_retried_not_fatal(daemon: Daemon, error: Exception,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    leftover = write_photos(daemon.folder, 1, seed=12)[0]
    daemon.intake.record([str(leftover)])  # pending from an earlier run: catch-up must dispatch it
    flaky = FlakyDispatcher(daemon.intake.dispatcher, failures=3, error=error)
    daemon.intake.dispatcher = flaky
    daemon.watcher = Watcher(daemon.intake, [str(daemon.folder)], sweep_interval=0.1, retry_interval=0.1)
    daemon.thread = threading.Thread(target=daemon.watcher.run, daemon=True)
    daemon.thread.start()
    wait_for(lambda: daemon.done(leftover))  # catch-up failed, was retried, and finished the work
    wait_for(lambda: flaky.calls.count("sweep") >= 3)  # sweeps keep running after failures
    assert daemon.thread.is_alive()
    assert "catch-up failed, retrying" in caplog.text
    assert flaky.failures == 0


EVERY_LABEL = ("fake", "real", "uncertain")  # the stand-in classifier's labels are arbitrary: act on all of them


def test_the_watcher_quarantines_a_reused_name_under_a_free_one(tmp_path: Path, env_settings) -> None:  # type: ignore[no-untyped-def]
    from fakewatch.db.tables import Action

    first, second = write_photos(tmp_path / "source", 2, seed=14)
    jail = tmp_path / "quarantine"
    (tmp_path / "watched").mkdir()
    running = Daemon(tmp_path / "watched", env_settings.replace(
        stability_delay=0.3, rescan_interval=0, quarantine_dir=str(jail), action_labels=EVERY_LABEL))
    try:
        running.start()
        (running.folder / "x.jpg").write_bytes(first.read_bytes())
        wait_for(lambda: (jail / "x.jpg").exists() and running.image(jail / "x.jpg") is not None)
        (jail / "x.jpg").unlink()  # deleted from quarantine; the row keeps the name
        (running.folder / "x.jpg").write_bytes(second.read_bytes())
        wait_for(lambda: running.image(jail / "x (2).jpg") is not None)
        assert (jail / "x (2).jpg").read_bytes() == second.read_bytes()
        assert not (running.folder / "x.jpg").exists() and not (jail / "x.jpg").exists()
        with running.intake.database.session() as session:
            assert [action.status for action in session.scalars(select(Action))] == ["done", "done"]
        assert running.thread is not None and running.thread.is_alive()
    finally:
        if running.thread is not None and running.thread.is_alive():
            running.stop()
        running.mode.close()


def test_sigterm_stops_the_watcher_within_the_unit_timeout_despite_a_slow_webhook(
        tmp_path: Path, env, slow_webhook) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from fakewatch.db.session import Database
    from fakewatch.db.tables import Action
    from tests.integration.services import FakewatchProcess
    from tests.integration.test_actions import SlowHook

    folder = tmp_path / "watched"
    folder.mkdir()
    env.update({"FAKEWATCH_WEBHOOK_URL": f"http://127.0.0.1:{slow_webhook.server_port}/",
                "FAKEWATCH_ACTION_LABELS": ",".join(EVERY_LABEL), "FAKEWATCH_STABILITY_DELAY": "0.3"})
    watcher = FakewatchProcess(["watch", str(folder)], env, tmp_path / "watch.log")
    try:
        wait_for(lambda: "watching" in watcher.output(), 60)
        write_photos(folder, 10, seed=15)
        wait_for(lambda: len(SlowHook.arrived) >= 2, 60)  # deliveries in flight, the rest waiting
        started = time.monotonic()
        os.killpg(watcher.process.pid, signal.SIGTERM)
        assert watcher.process.wait(60) == 0, watcher.output()
        took = time.monotonic() - started
    finally:
        watcher.stop()
    assert took < 15, f"the watcher took {took:.1f} s to stop"
    with Database(f"sqlite:///{env['FAKEWATCH_HOME']}/fakewatch.db").session() as session:
        statuses = [action.status for action in session.scalars(select(Action))]
    assert len(statuses) == 10 and set(statuses) == {"pending"}  # kept for the next start to retry
