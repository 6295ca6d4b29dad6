"""What intake learns about one file: stat, read and hash it in the fewest system calls, refusing symlinks
that leave the scanned folders and anything that is not a regular file (recorded by kind, never read)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field

from fakewatch import imaging
from fakewatch.errors import ImageError, NotRegularFile, OutsideRoot, SymlinkLoop
from fakewatch.intake.filters import IMAGE_EXTENSIONS
from fakewatch.names import shown

NOT_READ = (NotRegularFile, SymlinkLoop, OutsideRoot)  # refused before a byte was read


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
