"""The watch daemon: watchdog events -> stability tracking -> intake, plus catch-up and safety-net rescans.

Events only nominate files; a file is read once its size and mtime stay unchanged for the stability
delay (re-checked on every tick, so slow writers are caught without relying on events). On start, a
catch-up scan records what arrived while the daemon was down and re-dispatches rows left pending. A stop
request ends the loop between batches: recorded work is finished or stays pending in the database.

The daemon outlives its dependencies: when the database or the broker fails during catch-up, a rescan, a
sweep or an event, the failure is logged and the step is tried again later, backing off from
``retry_interval`` seconds (doubling after each failure in a row) up to the ``retry_max_delay`` setting.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from fakewatch.db import recording
from fakewatch.errors import QueueError
from fakewatch.intake.record import Intake
from fakewatch.intake.walk import chunks, real_roots
from fakewatch.watcher.decisions import Observation, StabilityTracker

log = logging.getLogger(__name__)
TICK_SECONDS = 0.1
RETRY_SECONDS = 1.0
TRANSIENT = (QueueError, DBAPIError)  # a broker or database that is down or restarting
RECORDING = "recording new files"


class _Forward(FileSystemEventHandler):
    def __init__(self, events: queue.Queue[FileSystemEvent]) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "modified", "moved", "deleted", "closed"):
            self.events.put(event)


def _observe(path: str) -> Observation | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return Observation(stat.st_size, stat.st_mtime)


@dataclass
class Watcher:
    """Watches folders until ``stop`` is set."""

    intake: Intake
    folders: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    on_batch: Callable[[dict[str, tuple[int, str]]], None] = lambda recorded: None
    sweep_interval: float = 0.0  # seconds between the dispatcher's sweeps (0: never)
    retry_interval: float = RETRY_SECONDS  # first wait after a broker or database failure

    def __post_init__(self) -> None:
        self.folders = [os.path.abspath(folder) for folder in self.folders]
        self.intake.roots = real_roots(self.folders)  # symlinks may lead into the watched folders only
        self.settings = self.intake.settings
        self.tracker = StabilityTracker(self.settings.stability_delay, self.clock)
        self.events: queue.Queue[FileSystemEvent] = queue.Queue()
        self.started = threading.Event()
        self.failures: dict[str, int] = {}  # step -> failures in a row, for the backoff
        self.resume_at: dict[str, float] = {}  # step -> clock time before which it is not tried again

    def run(self) -> None:
        observer = (PollingObserver(timeout=self.settings.poll_interval) if self.settings.polling else Observer())
        for folder in self.folders:
            observer.schedule(_Forward(self.events), folder, recursive=True)
        observer.start()
        try:
            caught_up = self._attempt("catch-up", self.catch_up)
            self.started.set()
            self._loop(caught_up)
        finally:
            observer.stop()
            observer.join(timeout=5)
            log.info("watcher stopped; %d files were still settling and will be found on the next start",
                     len(list(self.tracker.waiting())))

    def catch_up(self) -> None:
        """Record files that arrived or changed while stopped; re-dispatch rows left pending."""
        with self.intake.database.session() as session:
            leftover = recording.pending_ids(session)
        if leftover:
            log.info("resuming %d images left pending", len(leftover))
            self.intake.dispatcher.submit(leftover)
        self.rescan()
        self.mark_vanished()

    def mark_vanished(self) -> int:
        """Mark the recorded files under the folders that are gone (deleted while the daemon was down)."""
        gone = 0
        for folder in self.folders:
            after = 0
            while not self.stop.is_set():
                with self.intake.database.session() as session:
                    rows = recording.live_paths(session, folder, after)
                if not rows:
                    break
                after = rows[-1][0]
                missing = [path for _, path in rows if not os.path.lexists(path)]
                if missing:
                    with self.intake.database.session() as session, session.begin():
                        gone += recording.mark_gone(session, missing)
        if gone:
            log.info("%d files were deleted while the watcher was stopped; marked deleted", gone)
        return gone

    def rescan(self) -> None:
        """Walk the folders and take in every new or changed file (the safety net for missed events)."""
        for chunk in self.intake.batches(self.folders):
            if self.stop.is_set():
                return
            stats = [(path, observation.size, observation.mtime)
                     for path in chunk if (observation := _observe(path)) is not None]
            with self.intake.database.session() as session:
                settled = recording.unchanged(session, stats)
            fresh = [path for path in chunk if path not in settled]
            if fresh:
                self._take_in(fresh)

    def _attempt(self, what: str, step: Callable[[], object]) -> bool:
        """Run one step; a broker or database failure is logged and reported as False (try again later)."""
        try:
            step()
        except TRANSIENT as exc:
            self.failures[what] = self.failures.get(what, 0) + 1
            log.warning("%s failed, retrying in %.1f s: %s", what, self._delay(what), exc)
            return False
        self.failures.pop(what, None)
        return True

    def _delay(self, what: str) -> float:
        return self.settings.retry_delay(self.failures.get(what, 1), self.retry_interval)

    def _loop(self, caught_up: bool) -> None:
        now = self.clock()
        due = {"catch-up": None if caught_up else now + self._delay("catch-up"),
               "rescan": now + self.settings.rescan_interval if self.settings.rescan_interval else None,
               "sweep": now + self.sweep_interval if self.sweep_interval > 0 else None}
        steps = {"catch-up": self.catch_up, "rescan": self.rescan, "sweep": self.intake.dispatcher.sweep}
        while not self.stop.is_set():
            self._drain_events()
            self._settle()
            for name, moment in due.items():
                if moment is None or self.clock() < moment:
                    continue
                succeeded = self._attempt(name, steps[name])
                due[name] = self._next(name, succeeded)
            self.stop.wait(TICK_SECONDS)

    def _next(self, step: str, succeeded: bool) -> float | None:
        """When ``step`` runs again: soon after a failure, else on its interval (catch-up: never)."""
        if not succeeded:
            return self.clock() + self._delay(step)
        interval = {"catch-up": 0.0, "rescan": self.settings.rescan_interval, "sweep": self.sweep_interval}[step]
        return self.clock() + interval if interval > 0 else None

    def _settle(self) -> None:
        """Re-observe waiting files and take in the ones that stayed unchanged long enough."""
        for path in self.tracker.waiting():
            observation = _observe(path)
            if observation is None:
                self.tracker.forget(path)
            else:
                self.tracker.observe(path, observation)
        if self.clock() < self.resume_at.get(RECORDING, 0.0):
            return  # backing off after an outage: settled files wait in the tracker
        ready = list(chunks(self.tracker.ready(), self.settings.batch_size))
        for index, chunk in enumerate(ready):
            if self.stop.is_set():
                return  # the rest are not recorded yet: the next start's catch-up finds them
            if not self._attempt(RECORDING, partial(self._take_in, chunk)):
                self.resume_at[RECORDING] = self.clock() + self._delay(RECORDING)
                for path in (path for later in ready[index:] for path in later):
                    self._nominate(path)  # taken in once the backoff is over
                return

    def _drain_events(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            self._attempt("handling an event", partial(self._handle, event))

    def _take_in(self, paths: list[str]) -> None:
        """Record and dispatch ``paths``. Outages propagate (the step is retried); anything else a batch
        trips over is narrowed down file by file, so one file can never stop the daemon or its batch."""
        try:
            self.on_batch(self.intake.process(paths))
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001 - the daemon's edge: isolate the file, log it, carry on
            if len(paths) == 1:
                log.exception("could not take in %s; it is tried again on the next rescan", paths[0])
                return
            for path in paths:
                self._take_in([path])

    def _handle(self, event: FileSystemEvent) -> None:
        source = os.fsdecode(event.src_path)
        if event.event_type == "deleted":
            self.tracker.forget(source)
            with self.intake.database.session() as session, session.begin():
                recording.mark_deleted(session, source)
        elif event.event_type == "moved":
            self._moved(source, os.fsdecode(event.dest_path), event.is_directory)
        elif not event.is_directory:
            self._nominate(source)

    def _moved(self, source: str, destination: str, is_directory: bool) -> None:
        self.tracker.forget(source)
        inside = any(Path(destination).is_relative_to(folder) for folder in self.folders)
        with self.intake.database.session() as session, session.begin():
            if is_directory:
                moved = recording.rename_tree(session, source, destination) if inside else 0
                if not inside:
                    recording.mark_deleted(session, source)
            else:
                moved = int(inside and self.intake.file_filter.accepts(destination)
                            and recording.rename(session, source, destination))
                if not inside:
                    recording.mark_deleted(session, source)
        if inside and not moved:
            paths = self.intake.walk([destination]) if is_directory else [destination]
            for path in paths:
                self._nominate(path)

    def _nominate(self, path: str) -> None:
        if not self.intake.file_filter.accepts(path):
            return
        observation = _observe(path)
        if observation is not None:
            self.tracker.observe(path, observation)
