import pytest

from fakewatch.intake.filters import FileFilter
from fakewatch.watcher.decisions import Observation, StabilityTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_file_is_ready_only_after_quiet_period() -> None:
    clock = Clock()
    tracker = StabilityTracker(delay=2.0, clock=clock)
    tracker.observe("/w/a.jpg", Observation(10, 1.0))
    clock.now += 1.9
    assert tracker.ready() == []
    clock.now += 0.2
    assert tracker.ready() == ["/w/a.jpg"]
    assert tracker.ready() == []  # handed out once


def test_growing_file_restarts_the_clock() -> None:
    clock = Clock()
    tracker = StabilityTracker(delay=2.0, clock=clock)
    tracker.observe("/w/a.jpg", Observation(10, 1.0))
    clock.now += 1.5
    tracker.observe("/w/a.jpg", Observation(20, 2.0))  # still being written
    clock.now += 1.5
    assert tracker.ready() == []
    tracker.observe("/w/a.jpg", Observation(20, 2.0))  # unchanged: the clock keeps running
    clock.now += 0.6
    assert tracker.ready() == ["/w/a.jpg"]


def test_same_observation_does_not_reset() -> None:
    clock = Clock()
    tracker = StabilityTracker(delay=1.0, clock=clock)
    tracker.observe("/a", Observation(1, 1.0))
    clock.now += 0.6
    tracker.observe("/a", Observation(1, 1.0))
    clock.now += 0.5
    assert tracker.ready() == ["/a"]


def test_forget_and_rename_and_next_due() -> None:
    clock = Clock()
    tracker = StabilityTracker(delay=3.0, clock=clock)
    assert tracker.next_due() is None
    tracker.observe("/a.part", Observation(1, 1.0))
    tracker.rename("/a.part", "/a.jpg")
    tracker.observe("/b.jpg", Observation(1, 1.0))
    tracker.forget("/b.jpg")
    clock.now += 1.0
    assert tracker.next_due() == pytest.approx(2.0)
    clock.now += 2.0
    assert tracker.ready() == ["/a.jpg"]


@pytest.mark.parametrize("path", [
    "/w/.hidden.jpg", "/w/photo.jpg.part", "/w/x.tmp", "/w/dl.crdownload", "/w/Thumbs.db", "/w/.DS_Store",
    "/w/__MACOSX/photo.jpg", "/w/.git/objects/x.png", "/w/~$lock.jpg", "/w/desktop.ini",
])
def test_temp_and_system_files_are_ignored(path: str) -> None:
    assert not FileFilter().accepts(path)


def test_user_globs() -> None:
    only_jpeg = FileFilter(include=("*.jpg", "*.jpeg"))
    assert only_jpeg.accepts("/w/a.jpg") and not only_jpeg.accepts("/w/a.png")
    no_raw = FileFilter(exclude=("*.raw", "*/private/*"))
    assert no_raw.accepts("/w/a.png")
    assert not no_raw.accepts("/w/a.raw")
    assert not no_raw.accepts("/w/private/a.png")


def test_scan_chunks_start_short_and_double_up_to_the_batch_size() -> None:
    from fakewatch.intake.walk import chunks

    sizes = [len(chunk) for chunk in chunks(range(1000), 256, first=32)]
    assert sizes == [32, 64, 128, 256, 256, 256, 8]
    assert [len(chunk) for chunk in chunks(range(600), 256)] == [256, 256, 88]
    assert [len(chunk) for chunk in chunks(range(10), 4, first=32)] == [4, 4, 2]  # never over the batch size
    assert [item for chunk in chunks(range(1000), 256, first=32) for item in chunk] == list(range(1000))
