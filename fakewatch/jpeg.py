"""A JPEG's structure, walked once by its segment lengths: what decoding checks (the frame size, whether
the data reaches its end-of-image marker) and what the metadata readers look at (the header segments).

Pure Python with no heavy imports: commands that only read the database import it through the evidence
readers. Every offset is checked against the end of the data; a malformed structure ends the walk.
"""

from __future__ import annotations

import re
from typing import NamedTuple

FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn markers (not DHT, JPG, DAC)
_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the first marker after entropy-coded data


class Layout(NamedTuple):
    """What one walk of a JPEG found."""

    segments: tuple[tuple[int, int, int], ...]  # (marker, body start, body end) of each segment before the first scan
    frame: tuple[int, int] | None  # (width, height) announced by the first start-of-frame segment
    complete: bool  # the segments lead, through every scan, to an end-of-image marker
    problem: str | None  # why the walk of the header stopped before the first scan, when it did


def layout(data: bytes) -> Layout:
    """Walk ``data`` (bytes starting with the SOI marker) segment by segment.

    An EXIF thumbnail's own end-of-image marker sits inside APP1 and is skipped with it; after each
    start-of-scan the entropy-coded data runs to the next real marker. Whatever follows the end-of-image
    marker (a motion-photo video, MPF pictures, padding) is not part of this image."""
    segments: list[tuple[int, int, int]] = []
    frame: tuple[int, int] | None = None
    header = True  # before the first start-of-scan
    position, end = 2, len(data)
    while position + 2 <= end:
        if data[position] != 0xFF:
            return Layout(tuple(segments), frame, False, "JPEG segment marker missing" if header else None)
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:
            return Layout(tuple(segments), frame, True, None)
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            position += 2
            continue
        if position + 4 > end:
            break
        length = data[position + 2] << 8 | data[position + 3]
        if header and frame is None and marker in FRAMES and position + 9 <= end:
            frame = (data[position + 7] << 8 | data[position + 8], data[position + 5] << 8 | data[position + 6])
        if length < 2 or position + 2 + length > end:
            problem = f"JPEG segment {marker:#x} runs past the end of the file" if header else None
            return Layout(tuple(segments), frame, False, problem)
        if marker == 0xDA:  # start of scan: skip the entropy-coded data
            header = False
            found = _ENTROPY_END.search(data, position + 2 + length)
            if found is None:
                break
            position = found.start()
            continue
        if header:
            segments.append((marker, position + 4, position + 2 + length))
        position += 2 + length
    return Layout(tuple(segments), frame, False, None)
