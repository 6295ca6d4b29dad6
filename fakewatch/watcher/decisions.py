"""The watcher's pure decision, with an injected clock: when a file is complete enough to read. (Which
files to take at all is :class:`fakewatch.intake.filters.FileFilter`, shared with scans.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


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
