"""Intake: find files, hash them, record them in the database, hand pending ids to a dispatcher.

Used by `fakewatch scan` and `enqueue`, and by the watcher (events, catch-up and rescans). The database
row is written and committed before any id is dispatched, so nothing accepted is lost. Intake knows the
dispatcher only by the :class:`Dispatcher` interface: it never imports the classifier or the queue.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fakewatch import imaging
from fakewatch.config import Settings
from fakewatch.db import recording
from fakewatch.db.common import utcnow
from fakewatch.db.session import Database
from fakewatch.errors import ImageError, NotRegularFile, OutsideRoot, QueueError, SymlinkLoop
from fakewatch.names import shown
from fakewatch.watcher.decisions import FileFilter

log = logging.getLogger(__name__)

KEEP_BYTES = 1 << 20
FIRST_CHUNK = 32  # files in a scan's first chunk; the next ones double up to batch_size
NOT_READ = (NotRegularFile, SymlinkLoop, OutsideRoot)  # refused before a byte was read
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif")


class Dispatcher(Protocol):
    """Where pending image ids go: classified in-process (embedded) or queued (distributed)."""

    # True: intake records the rows it submits right after the commit already stamped as queued
    stamps_on_record: bool

    def submit(self, ids: list[int], force: bool = False, stamped: bool = False) -> None:
        """Classify or queue committed ids; may raise :class:`QueueError` (the rows stay pending).
        ``stamped``: intake recorded them with ``queued_at`` already set."""
        ...

    @property
    def unsettled(self) -> frozenset[int]:
        """Submitted ids whose outcome is not final yet here (inside :meth:`overlapping`)."""
        ...

    def overlapping(self) -> AbstractContextManager[None]:
        """A stretch in which :meth:`submit` may return before its ids are settled (a one-shot scan);
        everything is settled when it ends."""
        ...

    def settle(self) -> None:
        """Finish whatever :meth:`submit` left in flight."""
        ...

    def sweep(self) -> int:
        """Dispatch again images left pending (lost message, killed worker, earlier crash); returns how many."""
        ...

    def close(self) -> None: ...


@dataclass(slots=True)
class FileRecord:
    """What intake learned about one file; ``error_kind`` set means it could not be read. (A plain slotted
    class: one is made for every file a scan walks, and a frozen one costs three times as much to make.)"""

    path: str
    size: int | None
    mtime: float | None
    sha256: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)  # the bytes that were hashed


def walk(paths: Iterable[str | Path], file_filter: FileFilter) -> Iterator[str]:
    """Every candidate file under ``paths``, depth first, streaming. Directory symlinks are not followed
    (no loops); file symlinks are yielded, so a broken or looping one is recorded as unreadable."""
    for root in paths:
        root = os.path.abspath(root)
        if not os.path.isdir(root):
            if file_filter.accepts(root):
                yield root
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    children = sorted(entries, key=lambda entry: entry.name)
            except OSError as exc:
                log.warning("cannot list %s: %s", folder, exc)
                continue
            for entry in reversed(children):
                if entry.is_dir(follow_symlinks=False):
                    if not file_filter.ignored_dir(entry.name):
                        stack.append(entry.path)
                        if entry.name.lower().endswith(IMAGE_EXTENSIONS) and file_filter.accepts(entry.path):
                            yield entry.path  # a folder named like an image: recorded as kind "directory"
                elif _is_candidate(entry) and file_filter.accepts(entry.path):
                    yield entry.path


def _is_candidate(entry: os.DirEntry[str]) -> bool:
    """Everything but links to folders: regular files, FIFOs, sockets and devices (recorded by kind, never
    read), and file links, broken and looping ones included. Links to folders are not followed (no loops)."""
    if entry.is_symlink():
        return not os.path.isdir(entry.path)  # isdir is False for broken and looping links
    return True


def real_roots(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """The folders (and files named on their own) that links may point into, with links resolved."""
    return tuple(os.path.realpath(path) for path in paths)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _check_link(path: str, roots: tuple[str, ...], is_link: bool) -> None:
    """Refuse a symlink whose target leaves every root (``/etc/passwd`` planted as ``photo.jpg``)."""
    if roots and is_link:
        target = os.path.realpath(path)
        if not _inside(target, roots):
            raise OutsideRoot(f"a symlink to {shown(target)}, outside the scanned folders; not "
                              f"followed (set FAKEWATCH_FOLLOW_OUTSIDE_LINKS=true to allow it)")


def _stat(path: str) -> tuple[os.stat_result, bool]:
    """The file's own status, or the link's when the link leads nowhere (dangling, looping); and whether
    ``path`` is a symlink. One system call for a plain file."""
    own = os.lstat(path)
    if not stat.S_ISLNK(own.st_mode):
        return own, False
    try:
        return os.stat(path), True
    except OSError:
        return own, True


def inspect(path: str, max_file_bytes: int, roots: tuple[str, ...] = ()) -> FileRecord | None:
    """Stat, read and hash one file. None means "not an image, and not named like one": ignore it.

    Only regular files are read. A plain file (no symlink) is opened, checked and read in one go; links,
    special files and errors take the long way, which names what is wrong. ``roots`` (resolved) bound
    where symlinks may lead; empty: anywhere."""
    named_like_image = path.lower().endswith(IMAGE_EXTENSIONS)
    try:  # the usual case, a plain file, in the fewest system calls: no lstat, the link check cannot apply
        data, status = imaging.read_with_status(path, max_file_bytes, follow_link=False)
    except ImageError:
        pass  # a symlink, a special file, too large, unreadable: the long way below says which
    else:
        if data and imaging.sniff(data[:16]) is None and not named_like_image:
            return None
        return FileRecord(path, len(data), status.st_mtime, sha256=hashlib.sha256(data).hexdigest(), data=data)
    try:
        status, is_link = _stat(path)
    except OSError as exc:
        return FileRecord(path, None, None, error_kind="unreadable",
                          error_message=exc.strerror or str(exc))
    try:
        _check_link(path, roots, is_link)
        data = imaging.read_bytes(path, max_file_bytes)
    except ImageError as exc:
        if not named_like_image and isinstance(exc, NOT_READ):
            return None  # a FIFO or socket with no image name is no business of ours
        return FileRecord(path, None if isinstance(exc, NOT_READ) else status.st_size, status.st_mtime,
                          error_kind=exc.kind, error_message=str(exc))
    if data and imaging.sniff(data[:16]) is None and not named_like_image:
        return None
    return FileRecord(path, len(data), status.st_mtime, sha256=hashlib.sha256(data).hexdigest(), data=data)


@dataclass
class Intake:
    """Records files and dispatches the ones that need a verdict."""

    settings: Settings
    database: Database
    classifier_version: Callable[[], str | list[str]]
    dispatcher: Dispatcher
    file_filter: FileFilter = field(default_factory=FileFilter)
    # Embedded mode classifies right after recording: it keeps the bytes it hashed (files up to
    # KEEP_BYTES each) so every file is read once. ``recent`` holds them until the dispatch is done.
    keep_bytes: bool = False
    recent: dict[str, bytes] = field(default_factory=dict)
    # Resolved folders (and files named on their own) that symlinks may lead into: set by the scan or the
    # watcher from what it was given (:func:`real_roots`). Empty, or follow_outside_links on: anywhere.
    roots: tuple[str, ...] = ()
    unsent: int = 0  # pending ids the dispatcher could not take (broker down); they stay pending
    # told about images recorded as done at once (content this classifier already judged): verdict actions
    on_done: Callable[[list[int]], None] = lambda ids: None

    def walk(self, paths: Iterable[str | Path]) -> Iterator[str]:
        """Every file under ``paths`` this intake's filter accepts."""
        return walk(paths, self.file_filter)

    def batches(self, paths: Iterable[str | Path]) -> Iterator[list[str]]:
        """:meth:`walk` in lists of ``batch_size``, after a few shorter ones (32, 64, 128 files): the
        classifier gets its first images sooner, while the rest is still being read."""
        return chunks(self.walk(paths), self.settings.batch_size, first=FIRST_CHUNK)

    def record(self, paths: list[str], force: bool = False, stamped: bool = False) -> dict[str, tuple[int, str]]:
        """Record ``paths`` in one transaction; returns path -> (id, status) of the ones recorded. ``stamped``:
        pending rows are stamped as queued now (they are submitted right after the commit)."""
        roots = () if self.settings.follow_outside_links else self.roots
        records = [record for record in (inspect(path, self.settings.max_file_bytes, roots) for path in paths)
                   if record]
        if self.keep_bytes:
            self.recent.update((record.path, record.data) for record in records
                               if record.data is not None and len(record.data) <= KEEP_BYTES)
        queued_at = utcnow() if stamped else None
        with self.database.session() as session, session.begin():
            recorded = recording.record_files(session, records, self.classifier_version(), force, queued_at)
        return recorded

    def process(self, paths: list[str], force: bool = False) -> dict[str, tuple[int, str]]:
        """Record, then dispatch the pending ones (after the commit)."""
        stamped = self.dispatcher.stamps_on_record
        try:
            recorded = self.record(paths, force, stamped)
            pending = [image_id for image_id, status in recorded.values() if status == "pending" or force]
            self.on_done(sorted(image_id for image_id, status in recorded.values() if status == "done" and not force))
            if pending:
                try:
                    self.dispatcher.submit(sorted(pending), force, stamped)
                except QueueError as exc:
                    # recorded rows stay pending: the sweeper (or the next start) queues them again
                    self.unsent += len(pending)
                    log.warning("%s; %d images stay pending", exc, len(pending))
        finally:
            self.recent.clear()
        return recorded


def chunks(items: Iterable[Any], size: int, first: int | None = None) -> Iterator[list[Any]]:
    """``items`` in lists of ``size``; with ``first``, the lists start at that length and double up to ``size``."""
    wanted = min(size, first) if first else size
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= wanted:
            yield chunk
            chunk = []
            wanted = min(size, wanted * 2)
    if chunk:
        yield chunk
