"""Quarantine: move a judged file into the quarantine folder, as a virus scanner's ``--move`` does.

The file is opened without following a symlink, must be a regular file whose content still has the judged
SHA-256, and is moved from that descriptor: a hard link on the same file system (atomic, never overwrites),
an exclusive copy across file systems; anything else is :class:`ActionSkipped`. The new name is free on disk
and in the database (a taken one gets `` (2)``...), and the file's old name goes only once the new one is
recorded. The folder may not lie inside a scanned or watched one (:func:`check_quarantine`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterable

from fakewatch.config import Settings
from fakewatch.errors import ConfigError
from fakewatch.names import shown

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class ActionFailed(Exception):
    """An action could not be completed; the message is recorded on its row."""


class ActionSkipped(ActionFailed):
    """The action was not run because the file is not what was judged; recorded as ``skipped``."""


def quarantine_folder(settings: Settings) -> str:
    """The quarantine folder with every symlink resolved ("" when quarantine is off)."""
    return os.path.realpath(os.path.expanduser(settings.quarantine_dir)) if settings.quarantine_dir else ""


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_quarantine(settings: Settings, paths: Iterable[str]) -> None:
    """Refuse a quarantine folder inside one of ``paths`` (being scanned or watched): every file moved
    there would come back as new input."""
    folder = quarantine_folder(settings)
    if not folder:
        return
    for path in paths:
        root = os.path.realpath(path)
        if _within(folder, root):
            raise ConfigError(f"quarantine_dir {shown(folder)} lies inside {shown(root)}, which is being scanned "
                              f"or watched; choose a quarantine folder outside it.")


def _open_judged(path: str, sha256: str) -> tuple[int, os.stat_result]:
    """Open ``path`` if it is still the judged file: not a symlink, a regular file, content ``sha256``."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ActionSkipped(f"{shown(path)} is now a symlink; not moved") from exc
        if exc.errno == errno.ENOENT:
            raise ActionSkipped(f"{shown(path)} is gone; not moved") from exc
        raise ActionFailed(f"cannot open {shown(path)}: {exc.strerror}") from exc
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ActionSkipped(f"{shown(path)} is no longer a regular file; not moved")
        if _digest(descriptor) != sha256:
            raise ActionSkipped(f"{shown(path)} no longer holds the content that was judged; not moved")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor, status


def _digest(descriptor: int, sink: Callable[[bytes], object] = lambda data: None) -> str:
    """SHA-256 of the whole file behind ``descriptor`` (read from its start), each chunk also given to ``sink``."""
    hasher, offset = hashlib.sha256(), 0
    while data := os.pread(descriptor, CHUNK, offset):
        hasher.update(data)
        sink(data)
        offset += len(data)
    return hasher.hexdigest()


def _place(descriptor: int, status: os.stat_result, sha256: str, candidate: str) -> bool:
    """Give the open file the name ``candidate``: a hard link to it, or an exclusive copy of it across file
    systems. False when the name is taken on disk."""
    try:
        os.link(f"/proc/self/fd/{descriptor}", candidate)  # the open file itself, never the name it had
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.ENOENT):
            raise ActionFailed(f"cannot move into {shown(candidate)}: {exc.strerror}") from exc
        try:
            _copy_exclusive(descriptor, status, sha256, candidate)
        except FileExistsError:
            return False
    return True


def _copy_exclusive(descriptor: int, status: os.stat_result, sha256: str, target: str) -> None:
    """Copy the open file into a name nobody holds (O_EXCL), durably, checking it is the judged content."""
    output = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(output, "wb") as writer:
            copied = _digest(descriptor, writer.write)
            writer.flush()
            os.fchmod(writer.fileno(), stat.S_IMODE(status.st_mode))
            os.fsync(writer.fileno())
        os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns), follow_symlinks=False)
        if copied != sha256:
            raise ActionSkipped(f"{shown(target)}: the file changed while it was copied; not moved")
    except BaseException:
        os.unlink(target)
        raise


def _unlink_if_same(path: str, status: os.stat_result) -> None:
    """Remove ``path`` if it is still the file that was moved (not one swapped in since)."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return
    if (now.st_dev, now.st_ino) == (status.st_dev, status.st_ino):
        os.unlink(path)
    else:
        log.warning("%s was replaced while it was quarantined; the newcomer stays", shown(path))


def quarantine(path: str, folder: str, sha256: str, record: Callable[[str], bool]) -> str:
    """Move the judged file at ``path`` into ``folder`` under a free name; returns the new path.

    ``record(candidate)`` writes the new path to the database; it returns False when a row holds that name
    already, and the next name is tried. The old name is removed only after the record is written.
    Raises :class:`ActionSkipped` when the file is not the one judged (content ``sha256``)."""
    descriptor, status = _open_judged(path, sha256)
    try:
        if status.st_nlink == 0:
            raise ActionSkipped(f"{shown(path)} was removed; not moved")
        name = os.path.basename(path)
        stem, suffix = os.path.splitext(name)
        for attempt in range(1, 10_000):
            candidate = os.path.join(folder, name if attempt == 1 else f"{stem} ({attempt}){suffix}")
            if not _place(descriptor, status, sha256, candidate):
                continue
            try:
                free = record(candidate)
            except BaseException:
                os.unlink(candidate)
                raise
            if free:
                _unlink_if_same(path, status)
                return candidate
            os.unlink(candidate)
        raise ActionFailed(f"no free name for {shown(name)} in {shown(folder)}")
    finally:
        os.close(descriptor)
