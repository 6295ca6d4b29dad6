"""A PNG's chunks, walked by their lengths: what the decoder needs from a PNG and what it can go without.

Pure Python with no heavy imports, like :mod:`fakewatch.jpeg`. Every offset is checked against the end
of the data; a malformed structure ends the walk.
"""

from __future__ import annotations

TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})  # text chunks: never needed for the pixels


def without_text(data: bytes) -> bytes:
    """``data`` (a PNG) without its text chunks, or ``data`` itself when it has none.

    libpng inflates and keeps every compressed text chunk while it decodes (up to 8 MB each): 250 of
    them in a 1 MB file ask for 2 GB. The pixels do not need them, and the metadata readers read them
    within their own limits (:mod:`fakewatch.evidence.containers`)."""
    spans: list[tuple[int, int]] = []
    position, end = 8, len(data)
    while position + 12 <= end:
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        following = position + 12 + length
        if kind in TEXT and following <= end:
            spans.append((position, following))
        if kind == b"IEND" or following > end:
            break
        position = following
    if not spans:
        return data
    pieces, kept_from = [], 0
    for start, stop in spans:
        pieces.append(data[kept_from:start])
        kept_from = stop
    pieces.append(data[kept_from:])
    return b"".join(pieces)
