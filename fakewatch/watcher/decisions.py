"""Pure decisions the watcher makes, with an injected clock: which files to ignore, and when a file is
complete enough to read.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Observation:
    size: int
    mtime: float


@dataclass
class _Candidate:
    observation: Observation
    stable_since: float


@dataclass
class StabilityTracker:
    """A file is ready once its size and mtime have not changed for ``delay`` seconds.

    Feed it observations (from events or polls) with :meth:`observe`; :meth:`ready` returns the paths that
    have been quiet long enough and forgets them.
    """

    delay: float
    clock: Callable[[], float] = time.monotonic
    _candidates: dict[str, _Candidate] = field(default_factory=dict)

    def observe(self, path: str, observation: Observation) -> None:
        current = self._candidates.get(path)
        if current is None or current.observation != observation:
            self._candidates[path] = _Candidate(observation, self.clock())

    def forget(self, path: str) -> None:
        self._candidates.pop(path, None)

    def rename(self, old: str, new: str) -> None:
        candidate = self._candidates.pop(old, None)
        if candidate is not None:
            self._candidates[new] = candidate

    def waiting(self) -> Iterable[str]:
        return list(self._candidates)

    def ready(self) -> list[str]:
        now = self.clock()
        done = [path for path, candidate in self._candidates.items() if now - candidate.stable_since >= self.delay]
        for path in done:
            del self._candidates[path]
        return done

    def next_due(self) -> float | None:
        """Seconds until the next candidate could become ready, or None when nothing waits."""
        if not self._candidates:
            return None
        now = self.clock()
        return max(0.0, min(c.stable_since + self.delay - now for c in self._candidates.values()))
