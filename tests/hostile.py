"""Hostile inputs: a corpus of awkward and malicious folder entries, and a fuzzer of mutated images.

Used by the test suite (light versions) and by ``bench/faults.py`` (full versions). Every entry says what a
user should see for it: ``"done"`` (classified), an error kind, or ``None`` (ignored: no row at all).
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fakewatch.imaging import encode_jpeg

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31m"  # window title, clear screen, red


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height pixels, compressed to a few hundred kilobytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _photo(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def _damaged_scan(jpeg: bytes) -> bytes:
    data = bytearray(jpeg)
    middle = (data.index(b"\xff\xda") + len(data)) // 2
    data[middle:middle + 200] = b"\xfe" * 200
    return bytes(data)


def _smooth(seed: int, size: int = 128) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(_photo(seed, size), (9, 9), 3)


def _huge_jpeg_header(jpeg: bytes) -> bytes:
    """A JPEG whose frame header claims 65,500 x 65,500 pixels."""
    data = bytearray(jpeg)
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", 65_500, 65_500)
    return bytes(data)


def _files() -> dict[bytes, tuple[bytes, str | None]]:
    """Plain files: name -> (bytes, expected outcome)."""
    photo = encode_jpeg(_photo(1), 90)
    png = _save(Image.fromarray(_photo(2)), "PNG")
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return {
        b"truncated.jpg": (photo[: len(photo) // 2], "corrupt"),
        b"zero.jpg": (b"", "empty"),
        b"text.png": (b"this is not a picture\n" * 10, "unsupported"),
        b"bomb.png": (png_bomb(20_000, 20_000), "too_large"),
        b"huge-header.jpg": (_huge_jpeg_header(photo), "too_large"),
        b"cmyk.jpg": (_save(Image.new("CMYK", (40, 40), (0, 200, 200, 10)), "JPEG"), "done"),
        b"deep16.png": (_save(Image.fromarray(np.full((20, 20), 30000, dtype=np.uint16)), "PNG"), "done"),
        b"animated.gif": (gif.getvalue(), "done"),
        "ünïcödé фото.jpg".encode(): (photo, "done"),
        b"x\xff\xfe-latin1-\xe9t\xe9.jpg": (photo, "done"),  # not UTF-8: an archive from an old system
        ("title" + ESCAPES + ".jpg").encode(): (photo, "done"),
        b"new\nline\ttab\rreturn.jpg": (photo, "done"),
        b"=cmd|' -C calc'!A0.jpg": (photo, "done"),
        b"back\\slash\\xff.jpg": (photo, "done"),  # a valid name that looks like an escape
        "\u202egpj.exe.jpg".encode(): (photo, "done"),  # right-to-left override
        b"L" * 251 + b".jpg": (photo, "done"),  # the longest name most file systems allow
        b"motion-photo.jpg": (photo + b"ftypmp42" + bytes(range(256)) * 64, "done"),
        b"trailer.png": (png + b"\0" * 5000, "done"),
        b"png-as.jpg": (png, "done"),  # the content decides, not the extension
        b"damaged-scan.jpg": (_damaged_scan(encode_jpeg(_smooth(3), 90)), "corrupt"),
        b"stray-bytes.jpg": (photo[:-2] + b"\0" * 10 + photo[-2:], "done"),
        b"cut-idat.png": (png[: len(png) - 40], "corrupt"),
        b"garbage.tif": (b"II*\x00" + b"\xff" * 64, "corrupt"),
        b".hidden.jpg": (photo, None),
        b"download.jpg.part": (photo, None),
    }


def write_hostile_corpus(folder: Path, outside: Path) -> dict[bytes, str | None]:
    """Write the corpus under ``folder`` (``outside`` gets what links escape to); return
    file name (bytes) -> expected outcome. Over 25 kinds of entry."""
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    base = os.fsencode(folder)
    expected: dict[bytes, str | None] = {}
    for name, (data, outcome) in _files().items():
        with open(os.path.join(base, name), "wb") as handle:
            handle.write(data)
        expected[name] = outcome

    def link(name: bytes, target: str | bytes) -> None:
        os.symlink(target, os.path.join(base, name))

    os.mkfifo(folder / "fifo.jpg")
    expected[b"fifo.jpg"] = "fifo"
    link(b"fifo-link.jpg", os.path.join(base, b"fifo.jpg"))
    expected[b"fifo-link.jpg"] = "fifo"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.jpg"))
    server.close()  # the socket file stays
    expected[b"socket.jpg"] = "socket"
    (folder / "folder.jpg").mkdir()
    (folder / "folder.jpg" / "inside.jpg").write_bytes(encode_jpeg(_photo(4), 90))
    expected[b"folder.jpg"] = "directory"
    expected[b"inside.jpg"] = "done"
    link(b"loop.jpg", os.path.join(base, b"loop.jpg"))
    expected[b"loop.jpg"] = "symlink_loop"
    link(b"dangling.png", os.path.join(base, b"nowhere.png"))
    expected[b"dangling.png"] = "unreadable"
    link(b"passwd.jpg", "/etc/passwd")
    expected[b"passwd.jpg"] = "outside_root"
    (outside / "elsewhere.jpg").write_bytes(encode_jpeg(_photo(5), 90))
    link(b"elsewhere-link.jpg", os.fsencode(outside / "elsewhere.jpg"))
    expected[b"elsewhere-link.jpg"] = "outside_root"
    link(b"inside-link.jpg", os.path.join(base, b"cmyk.jpg"))
    expected[b"inside-link.jpg"] = "done"
    link(b"devnull.jpg", "/dev/null")
    expected[b"devnull.jpg"] = "outside_root"
    if os.geteuid() == 0:
        os.mknod(folder / "device.jpg", 0o600 | 0o020000, os.makedev(1, 3))  # a character device (null)
        expected[b"device.jpg"] = "device"
    else:  # root reads anything, so permissions can only be tested as a normal user
        locked = folder / "locked.jpg"
        locked.write_bytes(encode_jpeg(_photo(6), 90))
        locked.chmod(0)
        expected[b"locked.jpg"] = "unreadable"
    return expected


def _seeds() -> list[tuple[str, bytes]]:
    image = Image.fromarray(_smooth(7, 48))
    return [("jpg", _save(image, "JPEG", quality=85)), ("png", _save(image, "PNG")),
            ("gif", _save(image.convert("P"), "GIF")), ("tif", _save(image, "TIFF")),
            ("webp", _save(image, "WEBP", quality=80)), ("bmp", _save(image, "BMP"))]


def mutations(count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` mutated images (name, bytes): bit flips, byte runs, cuts, splices and header lies."""
    rng = np.random.default_rng(seed)
    seeds = _seeds()
    for index in range(count):
        suffix, original = seeds[index % len(seeds)]
        data = bytearray(original)
        how = index // len(seeds) % 5
        if how == 0:  # bit flips anywhere
            for position in rng.integers(0, len(data), int(rng.integers(1, 20))):
                data[position] ^= 1 << int(rng.integers(0, 8))
        elif how == 1:  # a run of one byte value
            start = int(rng.integers(0, len(data)))
            data[start:start + int(rng.integers(1, 400))] = bytes([int(rng.integers(0, 256))]) * 400
        elif how == 2:  # cut short
            data = data[: int(rng.integers(1, len(data)))]
        elif how == 3:  # splice another format's bytes in
            _, other = seeds[int(rng.integers(0, len(seeds)))]
            start = int(rng.integers(0, len(data)))
            data[start:start] = other[: int(rng.integers(1, len(other)))]
        else:  # lie in the first 64 bytes (sizes, lengths, magic)
            for position in rng.integers(0, min(64, len(data)), 6):
                data[position] = int(rng.integers(0, 256))
        yield f"fuzz_{index:05d}.{suffix}", bytes(data)


def write_mutations(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in mutations(count, seed):
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _with_png_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """``png`` with ``chunks`` (whole chunks) placed before its first IDAT, where decoders read text."""
    first_data = png.index(b"IDAT") - 4
    return png[:first_data] + b"".join(chunks) + png[first_data:]


def _exif_ifd_web(size: int) -> bytes:
    """One TIFF (EXIF) blob of about ``size`` bytes made of overlapping 512-entry directories: a directory
    starts every 12 bytes, its entry count is the upper half of the entry before it, and every entry is an
    EXIF-directory pointer (a SHORT, so the upper half is free) to another of them."""
    entries = (size - 10) // 12
    blob = bytearray(b"II*\x00" + struct.pack("<IH", 8, 512))
    for index in range(entries):
        target = 8 + 12 * (index * 7919 % entries)
        blob += struct.pack("<HHIHH", 0x8769, 3, 1, target, 512)
    return bytes(blob)


def exif_ifd_bomb(size: int) -> bytes:
    """A small real JPEG carrying about ``size`` bytes of EXIF: APP1 segments, each one TIFF blob of
    directories that point at each other (:func:`_exif_ifd_web`). Its pixels decode."""
    photo = encode_jpeg(_photo(8), 90)
    body = b"Exif\x00\x00" + _exif_ifd_web(65_000)
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return photo[:2] + segment * max(1, size // len(segment)) + photo[2:]


def png_text_bomb(count: int, xmp: bool) -> bytes:
    """A small real PNG with ``count`` compressed text chunks that each inflate to just under 4 MiB:
    compressed XMP packets (iTXt) when ``xmp``, else zTXt chunks under distinct keys. Its pixels decode."""
    inflated = zlib.compress(b"<x:xmpmeta " + b" " * (4 * 1024 * 1024 - 2000) + b"/>", 9)
    if xmp:
        chunk = _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + inflated)
        chunks = [chunk] * count
    else:
        chunks = [_png_chunk(b"zTXt", b"comment%04d\x00\x00" % index + inflated) for index in range(count)]
    return _with_png_chunks(_save(Image.fromarray(_photo(9)), "PNG"), chunks)


def png_huge_text(characters: int) -> bytes:
    """A small real PNG with one AUTOMATIC1111 ``parameters`` tEXt chunk of over ``characters`` characters:
    a prompt, then a settings line with a model name that long and a thousand made-up settings."""
    extra = ", ".join(f"Extra {index}: {index}" for index in range(1000))
    text = (f"a lighthouse at dusk\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, "
            f"Model: {'m' * characters}, {extra}")
    return _with_png_chunks(_save(Image.fromarray(_photo(10)), "PNG"),
                            [_png_chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1"))])


METADATA_BOMBS = {  # name -> (builder, expected outcome): each still classifies, with metadata_damaged evidence
    "exif-ifd-web-2.6MB.jpg": (lambda: exif_ifd_bomb(2_600_000), "done"),
    "exif-ifd-web-15.6MB.jpg": (lambda: exif_ifd_bomb(15_600_000), "done"),
    "xmp-itxt-250.png": (lambda: png_text_bomb(250, xmp=True), "done"),
    "ztxt-250.png": (lambda: png_text_bomb(250, xmp=False), "done"),
}
