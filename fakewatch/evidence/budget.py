"""How much work one file's metadata may cost: bytes inflated, EXIF directory entries visited, and time.

Metadata is attacker-controlled: a few kilobytes of zlib inflate to megabytes, and EXIF directories can
overlap and point at each other, so a small file can ask for gigabytes and minutes. One :class:`Budget`
is shared by every reader of one file. When a limit is met it raises
:class:`~fakewatch.errors.MetadataDamaged`: the readers stop, the file gets a ``metadata_damaged``
finding, and its pixels are classified as usual.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from fakewatch.errors import MetadataDamaged

MAX_INFLATED = 16 * 1024 * 1024  # bytes inflated from compressed text and XMP, per file
MAX_ENTRIES = 4096  # EXIF directory entries visited, per file (a camera file has a few hundred)
SECONDS = 1.0  # wall time for reading one file's metadata


class Budget:
    """The limits left for one file; ``clock`` (monotonic seconds) is injectable for tests."""

    def __init__(self, inflated: int = MAX_INFLATED, entries: int = MAX_ENTRIES, seconds: float = SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inflated = inflated  # left
        self.entries = entries  # left
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds
        self._limits = (inflated, entries)

    def inflate(self, raw: bytes, limit: int) -> bytes:
        """``raw`` (zlib) inflated, at most ``limit`` bytes: ValueError when it is longer (that block is
        skipped), MetadataDamaged when the file's own allowance runs out. Whatever was inflated counts."""
        self.check_time()
        allowed = min(limit, self.inflated)
        inflater = zlib.decompressobj()
        data = inflater.decompress(raw, allowed + 1)  # max_length: never more than that in memory
        self.inflated -= min(len(data), allowed)
        if len(data) > allowed:
            if allowed < limit:
                raise MetadataDamaged(f"compressed metadata inflates beyond {self._limits[0]:,} bytes in all")
            raise ValueError(f"compressed text inflates beyond {limit:,} bytes")
        return data

    def visit(self, entries: int) -> None:
        """Count ``entries`` EXIF directory entries about to be read."""
        self.entries -= entries
        if self.entries < 0:
            raise MetadataDamaged(f"over {self._limits[1]:,} EXIF directory entries")
        self.check_time()

    def check_time(self) -> None:
        if self._clock() > self._deadline:
            raise MetadataDamaged(f"metadata took over {self.seconds:g} s to read")
