"""Which paths intake takes in: never temporary or system files or folders, then the user's include and
exclude globs. Pure string decisions, run for every file a scan walks and every event the watcher sees."""

from __future__ import annotations

import fnmatch
import functools
import os
from dataclasses import dataclass

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif")
IGNORED_NAMES = ("thumbs.db", "desktop.ini", ".ds_store", "icon\r")
IGNORED_SUFFIXES = (".part", ".tmp", ".temp", ".crdownload", ".download", ".partial", ".swp", ".lock", "~")
IGNORED_DIRS = ("__macosx", ".git", ".svn", ".hg", ".trash", ".trashes", "$recycle.bin", "@eadir", ".thumbnails")


def _ignored_dir(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(".") or lowered in IGNORED_DIRS


@functools.lru_cache(maxsize=1024)
def _inside_ignored_dir(folder: str) -> bool:
    """Whether any folder on the way to ``folder`` is one that is never scanned (asked once per folder)."""
    return any(_ignored_dir(part) for part in folder.split(os.sep) if part)


@dataclass(frozen=True)
class FileFilter:
    """Decides which paths are worth scanning: no temp/system files, then user include/exclude globs.

    Include globs match the file name; exclude globs match the file name or the whole path.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def ignored_dir(self, name: str) -> bool:
        return _ignored_dir(name)

    def accepts(self, path: str) -> bool:
        folder, name = os.path.split(path)  # string operations: this runs for every file of a scan
        lowered = name.lower()
        if not name or lowered.startswith(".") or lowered.startswith("~$") or lowered in IGNORED_NAMES:
            return False
        if lowered.endswith(IGNORED_SUFFIXES):
            return False
        if _inside_ignored_dir(folder):
            return False
        if self.include and not any(fnmatch.fnmatch(name, pattern) for pattern in self.include):
            return False
        return not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern) for pattern in self.exclude)
