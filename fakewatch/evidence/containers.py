"""Metadata blocks out of JPEG, PNG and WebP bytes, read within bounds.

:func:`blocks` walks a file's structure (JPEG segments, PNG chunks, RIFF chunks) and returns what the
analyzers look at: text chunks, EXIF, XMP, IPTC and C2PA/JUMBF presence. Metadata is attacker-controlled,
so every read is bounded: offsets never go past the end of the data, at most ``MAX_BLOCKS`` blocks are
kept, compressed text is inflated to at most ``MAX_TEXT`` bytes per block and the file's
:class:`~fakewatch.evidence.budget.Budget` in all, what is kept is capped at ``MAX_TOTAL`` bytes (counted
after inflating), and the walk stops at the budget's deadline. A malformed structure, or a limit met,
ends the walk with a note instead of an exception.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from fakewatch import jpeg
from fakewatch.errors import MetadataDamaged
from fakewatch.evidence.budget import Budget

MAX_BLOCKS = 256
MAX_TEXT = 4 * 1024 * 1024  # one text chunk or XMP packet, inflated
MAX_TOTAL = 16 * 1024 * 1024  # everything kept from one file
MAX_NOTES = 20
XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_JPEG = b"Exif\x00\x00"


@dataclass
class Blocks:
    """What one file carries besides its pixels."""

    text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/zTXt/iTXt, JPEG COM as "comment"
    exif: list[bytes] = field(default_factory=list)  # TIFF-structured EXIF blobs
    xmp: list[str] = field(default_factory=list)
    iptc: list[bytes] = field(default_factory=list)  # Photoshop APP13 resource blocks
    c2pa: bool = False  # a JUMBF/C2PA manifest store is present
    chroma_subsampled: bool = False  # a JPEG whose colour channels are stored at lower resolution
    notes: list[str] = field(default_factory=list)  # structure problems met on the way
    kept: int = 0
    budget: Budget = field(default_factory=Budget, compare=False, repr=False)  # shared with the EXIF reader

    @property
    def carries_metadata(self) -> bool:
        """Anything for the metadata analyzers to read (without it, each of them finds nothing)."""
        return bool(self.text or self.exif or self.xmp or self.iptc)

    def keep(self, size: int) -> bool:
        if self.kept + size > MAX_TOTAL or len(self.exif) + len(self.xmp) + len(self.text) > MAX_BLOCKS:
            self.note("metadata over the size limit; the rest was not read")
            return False
        self.kept += size
        return True

    def note(self, text: str) -> None:
        """Remember a problem once (a hostile file can repeat one thousands of times)."""
        if len(self.notes) < MAX_NOTES and text not in self.notes:
            self.notes.append(text)


def _text(raw: bytes, found: Blocks, what: str) -> str:
    """UTF-8 text of at most ``MAX_TEXT`` bytes; a longer or undecodable one is noted and kept in part."""
    if len(raw) > MAX_TEXT:
        found.note(f"{what} is {len(raw):,} bytes; only the first {MAX_TEXT:,} were read")
        raw = raw[:MAX_TEXT]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        found.note(f"{what} is not valid UTF-8")
        return raw.decode("utf-8", errors="replace")


def _png(data: bytes, found: Blocks) -> None:
    position = 8
    while position + 12 <= len(data):
        found.budget.check_time()
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if len(body) < length:
            found.note(f"PNG chunk {kind!r} runs past the end of the file")
            return
        position += 12 + length
        try:
            if kind == b"tEXt" and b"\x00" in body and found.keep(len(body)):
                key, _, value = body.partition(b"\x00")
                if len(value) > MAX_TEXT:
                    found.note(f"text chunk {key[:40]!r} is {len(value):,} bytes; only the first "
                                       f"{MAX_TEXT:,} were read")
                found.text[key.decode("latin-1")[:80]] = value[:MAX_TEXT].decode("latin-1")
            elif kind == b"zTXt" and b"\x00" in body:
                key, _, rest = body.partition(b"\x00")
                value = found.budget.inflate(rest[1:], MAX_TEXT)
                if found.keep(len(value)):
                    found.text[key.decode("latin-1")[:80]] = value.decode("latin-1")
            elif kind == b"iTXt" and b"\x00" in body:
                key, _, rest = body.partition(b"\x00")
                compressed, rest = rest[:1] == b"\x01", rest[2:]
                _language, _, rest = rest.partition(b"\x00")
                _translated, _, value = rest.partition(b"\x00")
                value = found.budget.inflate(value, MAX_TEXT) if compressed else value
                if not found.keep(len(value)):
                    continue
                name = key.decode("latin-1")[:80]
                if name == "XML:com.adobe.xmp":
                    found.xmp.append(_text(value, found, "XMP packet"))
                else:
                    found.text[name] = _text(value, found, f"text chunk {name[:40]!r}")
            elif kind == b"eXIf" and found.keep(len(body)):
                found.exif.append(body)
            elif kind == b"caBX":
                found.c2pa = True
        except (ValueError, zlib.error) as exc:
            found.note(f"PNG {kind.decode('latin-1')} chunk: {exc}")
        if kind == b"IEND":
            return


_JPEG_KEPT = frozenset({0xE1, 0xED, 0xEB, 0xFE}) | jpeg.FRAMES  # segments whose bodies are read


def _jpeg(data: bytes, found: Blocks, layout: jpeg.Layout) -> None:
    for marker, start, stop in layout.segments:
        found.budget.check_time()
        if marker not in _JPEG_KEPT:  # tables and other segments: skipped without copying them
            continue
        body = data[start:stop]
        if marker == 0xE1 and body.startswith(EXIF_JPEG) and found.keep(len(body)):
            found.exif.append(body[len(EXIF_JPEG):])
        elif marker == 0xE1 and body.startswith(XMP_JPEG) and found.keep(len(body)):
            found.xmp.append(_text(body[len(XMP_JPEG):], found, "XMP packet"))
        elif marker == 0xED and body.startswith(b"Photoshop 3.0\x00") and found.keep(len(body)):
            found.iptc.append(body[14:])
        elif marker == 0xEB and body[:2] == b"JP":  # APP11 JUMBF: C2PA manifest store
            found.c2pa = True
        elif marker in jpeg.FRAMES and len(body) >= 6:  # frame header: the channels' sampling factors
            factors = {body[7 + 3 * index] for index in range(body[5]) if 7 + 3 * index < len(body)}
            found.chroma_subsampled = len(factors) > 1
        elif marker == 0xFE and found.keep(len(body)):
            found.text.setdefault("comment", _text(body, found, "JPEG comment"))
    if layout.problem:
        found.note(layout.problem)


def _webp(data: bytes, found: Blocks) -> None:
    position = 12
    while position + 8 <= len(data):
        found.budget.check_time()
        kind, length = struct.unpack("<4sI", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if len(body) < length:
            found.note(f"WebP chunk {kind!r} runs past the end of the file")
            return
        position += 8 + length + (length & 1)
        if kind == b"EXIF" and found.keep(len(body)):
            found.exif.append(body[len(EXIF_JPEG):] if body.startswith(EXIF_JPEG) else body)
        elif kind == b"XMP " and found.keep(len(body)):
            found.xmp.append(_text(body, found, "XMP packet"))
        elif kind == b"C2PA":
            found.c2pa = True


def blocks(data: bytes, kind: str, layout: jpeg.Layout | None = None, budget: Budget | None = None) -> Blocks:
    """The metadata blocks of ``data``, an image of sniffed ``kind`` (jpeg, png, webp; others: none).
    ``layout``: a JPEG's :func:`fakewatch.jpeg.layout`, when the caller walked it already; ``budget``: the
    file's reading limits (a fresh one when not given)."""
    found = Blocks(budget=budget or Budget())
    try:
        if kind == "png":
            _png(data, found)
        elif kind == "jpeg":
            _jpeg(data, found, layout or jpeg.layout(data))
        elif kind == "webp":
            _webp(data, found)
    except struct.error as exc:
        found.note(f"truncated structure: {exc}")
    except MetadataDamaged as exc:
        found.note(f"{exc}; the rest was not read")
    return found
