"""A small, bounded reader for the EXIF tags the analyzers need (TIFF structure, IFD0 and the EXIF IFD).

Offsets are checked against the blob's length, each IFD is visited once (loops end the walk), entry
counts per directory and value sizes are capped, and the entries visited count against the file's
:class:`~fakewatch.evidence.budget.Budget` (directories that overlap and point at each other would
otherwise cost minutes). Only the values of known tags are read. IPTC-IIM records come from Photoshop
APP13 resource blocks.
"""

from __future__ import annotations

import struct

from fakewatch.evidence.budget import Budget

TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x013B: "Artist",
        0x8298: "Copyright", 0x927C: "MakerNote", 0x9286: "UserComment", 0xA434: "LensModel",
        0xA433: "LensMake", 0x9003: "DateTimeOriginal"}
EXIF_IFD = 0x8769
MAX_ENTRIES = 512
MAX_VALUE = 64 * 1024
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}
MAX_NOTES = 20


def _note(notes: list[str], text: str) -> None:
    if len(notes) < MAX_NOTES and text not in notes:
        notes.append(text)


def _value(blob: bytes, order: str, kind: int, count: int, field: bytes, notes: list[str]) -> bytes | int | None:
    size = TYPE_SIZES.get(kind, 0) * count
    if size == 0 or size > MAX_VALUE:
        if size > MAX_VALUE:
            _note(notes, f"EXIF value of {size:,} bytes skipped")
        return None
    if size <= 4:
        raw = field[:size]
    else:
        (offset,) = struct.unpack(order + "I", field)
        if offset + size > len(blob):
            _note(notes, "EXIF value points past the end of its block; skipped")
            return None
        raw = blob[offset:offset + size]
    if kind in (3, 4) and count == 1:
        return struct.unpack(order + ("H" if kind == 3 else "I"), raw)[0]  # type: ignore[no-any-return]
    return raw


def read_exif(blob: bytes, notes: list[str] | None = None, budget: Budget | None = None) -> dict[str, bytes]:
    """The known tags of one EXIF (TIFF) blob, as raw bytes; malformed parts are skipped (and noted).
    Raises :class:`~fakewatch.errors.MetadataDamaged` when ``budget`` (the file's limits) runs out."""
    notes = notes if notes is not None else []
    budget = budget or Budget()
    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        return {}
    order = "<" if blob[:2] == b"II" else ">"
    found: dict[str, bytes] = {}
    seen: set[int] = set()
    pending = [struct.unpack(order + "I", blob[4:8])[0]]
    while pending:
        offset = pending.pop()
        if offset in seen or offset + 2 > len(blob):
            _note(notes, "EXIF directory loop cut" if offset in seen else "EXIF directory past the end; skipped")
            continue
        seen.add(offset)
        (count,) = struct.unpack(order + "H", blob[offset:offset + 2])
        count = min(count, MAX_ENTRIES, (len(blob) - offset - 2) // 12)
        budget.visit(count)
        for index in range(count):
            start = offset + 2 + 12 * index
            tag, kind, number = struct.unpack(order + "HHI", blob[start:start + 8])
            if tag != EXIF_IFD and tag not in TAGS:
                continue
            value = _value(blob, order, kind, number, blob[start + 8:start + 12], notes)
            if tag == EXIF_IFD and isinstance(value, int):
                if value in seen:
                    _note(notes, "EXIF directory loop cut")
                else:
                    pending.append(value)
            elif tag in TAGS and isinstance(value, bytes):
                found[TAGS[tag]] = value
    return found


def text_of(raw: bytes) -> str:
    """EXIF ASCII or UserComment bytes as text (a UserComment's 8-byte charset prefix removed)."""
    for prefix, encoding in ((b"ASCII\x00\x00\x00", "latin-1"), (b"UNICODE\x00", "utf-16"),
                             (b"\x00" * 8, "latin-1")):
        if raw.startswith(prefix):
            raw = raw[8:]
            try:
                return raw.decode(encoding, errors="replace").strip("\x00 ").strip()
            except LookupError:
                break
    return raw.decode("utf-8", errors="replace").strip("\x00 ").strip()


def read_iptc(resources: bytes) -> dict[str, str]:
    """IPTC-IIM Credit, By-line and Caption out of Photoshop image resource blocks (8BIM 0x0404)."""
    names = {80: "By-line", 110: "Credit", 115: "Source", 120: "Caption"}
    found: dict[str, str] = {}
    position = 0
    while position + 12 <= len(resources) and resources[position:position + 4] == b"8BIM":
        (resource,) = struct.unpack(">H", resources[position + 4:position + 6])
        name_length = resources[position + 6]
        name_end = position + 6 + ((name_length + 2) & ~1)  # a Pascal string padded to an even length
        if name_end + 4 > len(resources):
            return found
        (size,) = struct.unpack(">I", resources[name_end:name_end + 4])
        body = resources[name_end + 4:name_end + 4 + size]
        position = name_end + 4 + size + (size & 1)
        if resource != 0x0404:
            continue
        record = 0
        while record + 5 <= len(body) and body[record] == 0x1C:
            number, dataset = body[record + 1], body[record + 2]
            (length,) = struct.unpack(">H", body[record + 3:record + 5])
            value = body[record + 5:record + 5 + length]
            record += 5 + length
            if number == 2 and dataset in names:
                found[names[dataset]] = value.decode("utf-8", errors="replace")
    return found
