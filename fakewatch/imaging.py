"""The one path from file bytes to classifier input, shared by training, evaluation and scanning.

bytes -> :func:`sniff` (magic bytes, not the extension) -> header size check (decompression-bomb guard)
-> OpenCV decode to 8-bit RGB (EXIF orientation applied; grey, alpha, 16-bit, CMYK and palette images
converted; first frame of animations) -> :func:`resize_for` the classifier's :class:`InputSpec`.

Arrays stay uint8 RGB; scaling to [0, 1] happens inside the classifier, so the spec stored with the
weights is the whole contract.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakewatch import diagnostics, jpeg, png
from fakewatch.config import Limits
from fakewatch.errors import (
    CorruptImage,
    EmptyFile,
    ImageError,
    NotRegularFile,
    SymlinkLoop,
    TooLargeImage,
    UnreadableFile,
    UnsupportedImage,
)
from fakewatch.names import shown

SPEC_FORMAT = 1

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


@dataclass(frozen=True)
class InputSpec:
    """What the classifier expects; stored in every classifier card."""

    size: int = 32
    color_order: str = "RGB"
    dtype: str = "uint8"
    scaling: str = "divide by 255 inside the classifier"
    resize: str = "cv2.INTER_AREA, whole frame to size x size"
    format_version: int = SPEC_FORMAT
    crops: str = "resize"  # "resize": the whole frame, resized; "tiles": native-resolution crops (see prepare)
    max_crops: int = 1  # "tiles": the most crops one image is classified from
    pixels_per_crop: int = 0  # "tiles": one crop per this many pixels of the image, up to max_crops (0: max_crops)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        return cls(**data)


def sniff(head: bytes) -> str | None:
    """Image type from the first bytes of a file, or None if it is not a supported image."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


_SPECIAL_KINDS = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"),
                  (stat.S_ISBLK, "device"), (stat.S_ISDIR, "directory"))


def special_kind(mode: int) -> str | None:
    """What a non-regular file is (``fifo``, ``socket``, ``device``, ``directory``); None for a regular one."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "device"


def _read_all(descriptor: int, size: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``descriptor``, asking for the size ``fstat`` gave (plus one, to notice a
    file still growing) rather than allocating ``limit`` bytes for every small file."""
    parts: list[bytes] = []
    total = 0
    while total < limit:
        wanted = min(max(size + 1 - total, 1 << 16), limit - total)
        part = os.read(descriptor, wanted)
        if not part:
            break
        parts.append(part)
        total += len(part)
        if len(part) < wanted:  # a regular file returns less than asked only at its end
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_bytes(path: str | Path, max_file_bytes: int) -> bytes:
    """Read a regular file whole, turning I/O trouble into the matching :class:`ImageError` (whose message
    does not repeat the path: the caller names the file, or :func:`about` does).

    The file is opened without blocking and checked with ``fstat`` on the open descriptor before a byte
    is read: a FIFO, socket, device or folder (also one swapped in under the name) is refused by kind and
    can never stall the reader."""
    return read_with_status(path, max_file_bytes)[0]


def read_with_status(path: str | Path, max_file_bytes: int, follow_link: bool = True) -> tuple[bytes, os.stat_result]:
    """:func:`read_bytes`, and the open file's status (size, modification time) from the same ``fstat``.
    ``follow_link`` False: a symlink named by ``path`` is refused (:class:`SymlinkLoop`, as the system
    reports it) instead of followed, for callers that check links themselves."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_link else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError as exc:
        message = "dangling symlink" if os.path.islink(path) else "file vanished before it could be read"
        raise UnreadableFile(message) from exc
    except PermissionError as exc:
        raise UnreadableFile("permission denied; give the scanning user read access") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkLoop("symlink loop") from exc
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO on some systems
            raise NotRegularFile("not a regular file", "socket") from exc
        raise UnreadableFile(exc.strerror or str(exc)) from exc
    try:
        status = os.fstat(descriptor)
        kind = special_kind(status.st_mode)
        if kind is not None:
            raise NotRegularFile(f"a {kind}, not a regular file; it is never read", kind)
        data = _read_all(descriptor, status.st_size, max_file_bytes + 1)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from exc
    finally:
        os.close(descriptor)
    if len(data) > max_file_bytes:
        raise TooLargeImage(f"larger than max_file_bytes={max_file_bytes}")
    return data, status


def _header_size(data: bytes, kind: str, layout: jpeg.Layout | None = None) -> tuple[int, int] | None:
    """Width and height read straight from a PNG, GIF, BMP or JPEG header (``layout``: the JPEG's walk,
    when the caller made it already); None when not found here."""
    if kind == "png" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if kind == "gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if kind == "bmp" and len(data) >= 26:
        return abs(int.from_bytes(data[18:22], "little", signed=True)), \
            abs(int.from_bytes(data[22:26], "little", signed=True))
    if kind == "jpeg":
        width, height = (layout or jpeg.layout(data)).frame or (0, 0)
        return (width, height) if width and height else None
    return None


def _pillow() -> Any:
    """Pillow, imported on first use (only headers the fast parsers above do not cover need it)."""
    from PIL import Image as PILImage

    PILImage.MAX_IMAGE_PIXELS = None  # it only reads headers here; the pixel limit is ours (max_pixels)
    return PILImage


def _announced_size(data: bytes, kind: str, layout: jpeg.Layout | None = None) -> tuple[int, int]:
    """Width and height from the header, without decoding. Common headers are parsed here directly (a few
    microseconds); the rest go through Pillow, which only reads the header."""
    size = _header_size(data, kind, layout)
    if size is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _pillow().open(io.BytesIO(data)) as header:
                    size = header.size
        except Exception as exc:  # Pillow raises many types for damaged headers
            raise CorruptImage(f"cannot read image header: {exc}") from exc
    return size


def dimensions(data: bytes) -> tuple[int, int]:
    """(height, width) an image's header announces, without decoding it; ImageError when it is not a
    supported image or its header is unreadable."""
    kind = sniff(data[:16])
    if kind is None:
        raise UnsupportedImage("not a JPEG, PNG, WebP, BMP, TIFF or GIF image (checked by content)")
    width, height = _announced_size(data, kind)
    return height, width


def _check_dimensions(data: bytes, kind: str, max_pixels: int, layout: jpeg.Layout | None) -> None:
    """Refuse images whose header announces more than ``max_pixels`` before anything is decoded."""
    width, height = _announced_size(data, kind, layout)
    if width * height > max_pixels:
        raise TooLargeImage(f"{width}x{height} pixels is over max_pixels={max_pixels} "
                            f"(decompression-bomb guard; raise FAKEWATCH_MAX_PIXELS to allow it)")


def _png_complete(data: bytes) -> bool:
    """True when the PNG's chunks, walked by their lengths, reach an IEND chunk (trailing bytes are fine)."""
    position, end = 8, len(data)
    while position + 8 <= end:
        length = int.from_bytes(data[position:position + 4], "big")
        if data[position + 4:position + 8] == b"IEND":
            return True
        position += 12 + length
    return False


def _check_complete(data: bytes, kind: str, layout: jpeg.Layout | None) -> None:
    """Catch truncation that decoders would silently paint grey."""
    if layout is not None and not layout.complete:
        raise CorruptImage("truncated JPEG: the image data ends before its end-of-image marker")
    if kind == "png" and not _png_complete(data):
        raise CorruptImage("truncated PNG: the chunks end before IEND")


def decode(data: bytes, max_pixels: int, notes: list[str] | None = None, capture: bool = True,
           layout: jpeg.Layout | None = None) -> np.ndarray:
    """Decode image bytes to an HxWx3 uint8 RGB array, or raise an :class:`ImageError`.

    What the decoder libraries report is captured, not printed: a damaged stream raises
    :class:`CorruptImage`; other warnings are appended to ``notes`` when given. ``capture`` False: the
    caller captures around many decodes at once (:func:`fakewatch.diagnostics.captured`) and decodes
    each again on its own when anything was said, so that every message lands on its file. ``layout``: a
    JPEG's :func:`fakewatch.jpeg.layout`, when the caller walked it already (for its metadata too)."""
    if not data:
        raise EmptyFile("zero-byte file")
    kind = sniff(data[:16])
    if kind is None:
        raise UnsupportedImage("not a JPEG, PNG, WebP, BMP, TIFF or GIF image (checked by content)")
    if kind != "jpeg":
        layout = None
    elif layout is None:
        layout = jpeg.layout(data)
    _check_dimensions(data, kind, max_pixels, layout)
    _check_complete(data, kind, layout)
    # libpng would inflate and keep every compressed text chunk; the metadata readers have their own limits
    buffer = np.frombuffer(png.without_text(data) if kind == "png" else data, dtype=np.uint8)
    said: list[str] = []
    try:
        with diagnostics.captured(said) if capture else nullcontext():
            rgb = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB)
    except cv2.error as exc:
        raise CorruptImage(f"{kind} decoder failed: {exc}") from exc
    damage, warnings_note = diagnostics.judge(said)
    if rgb is None or rgb.size == 0:
        raise CorruptImage(f"damaged {kind} data: {damage or warnings_note or 'the decoder could not read it'}")
    if damage:
        raise CorruptImage(f"damaged {kind} data: {damage}")
    if warnings_note and notes is not None:
        notes.append(warnings_note)
    return rgb


def resize_for(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize a decoded RGB image to the classifier's input size."""
    if rgb.shape[0] == spec.size and rgb.shape[1] == spec.size:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (spec.size, spec.size), interpolation=cv2.INTER_AREA)


CROP_POLICIES = ("resize", "tiles")


def fit_min_side(rgb: np.ndarray, size: int) -> np.ndarray:
    """An image whose shorter side is under ``size``, scaled up (bilinear) until it equals ``size``;
    larger images are returned untouched (crops are then taken at their native resolution)."""
    height, width = rgb.shape[:2]
    if min(height, width) >= size:
        return rgb
    scale = size / min(height, width)
    shape = (max(size, round(width * scale)), max(size, round(height * scale)))
    return cv2.resize(rgb, shape, interpolation=cv2.INTER_LINEAR)


def _origins(length: int, size: int) -> list[int]:
    """Where crops start along one axis: the centre, plus both ends once the side is 1.5 crops long."""
    centre = (length - size) // 2
    return [centre] if length < size * 3 // 2 else [0, centre, length - size]


def tile_origins(height: int, width: int, size: int, max_crops: int) -> list[tuple[int, int]]:
    """The fixed crop pattern for an image at least ``size`` on each side: the centre crop first, then
    the corners (or, for a long thin image, the two ends), up to ``max_crops``. Every crop lies inside."""
    rows, columns = _origins(height, size), _origins(width, size)
    centre = (rows[len(rows) // 2], columns[len(columns) // 2])
    corners = [(top, left) for top in (rows[0], rows[-1]) for left in (columns[0], columns[-1])]
    pattern = [centre] + [origin for origin in dict.fromkeys(corners) if origin != centre]
    return pattern[:max(1, max_crops)]


def crop_count(height: int, width: int, spec: InputSpec) -> int:
    """How many crops an image of this size is classified from: one per ``pixels_per_crop`` pixels
    (rounded up), at least one and at most ``max_crops``."""
    if not spec.pixels_per_crop:
        return spec.max_crops
    return max(1, min(spec.max_crops, -(-height * width // spec.pixels_per_crop)))


def prepare(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A decoded image -> the classifier's crops, k x size x size x 3 uint8 (k = 1 for ``resize``).

    ``tiles``: images smaller than one crop are first scaled up to it (:func:`fit_min_side`); crops are
    then cut at native resolution by :func:`tile_origins`, as many as :func:`crop_count` gives; their logits
    are averaged by the classifier."""
    if spec.crops == "resize":
        return resize_for(rgb, spec)[np.newaxis]
    if spec.crops != "tiles":
        raise ValueError(f"unknown crop policy {spec.crops!r}")
    rgb = fit_min_side(rgb, spec.size)
    origins = tile_origins(rgb.shape[0], rgb.shape[1], spec.size, crop_count(rgb.shape[0], rgb.shape[1], spec))
    return np.stack([rgb[top:top + spec.size, left:left + spec.size] for top, left in origins])


def load_input(data: bytes, spec: InputSpec, max_pixels: int, notes: list[str] | None = None) -> np.ndarray:
    """Bytes to the exact array the classifier sees: ``spec.size`` x ``spec.size`` x 3 uint8 RGB."""
    return resize_for(decode(data, max_pixels, notes), spec)


def load_file(path: str | Path, spec: InputSpec, limits: Limits, notes: list[str] | None = None) -> np.ndarray:
    """Read and prepare one file; raises :class:`ImageError` with a recorded kind on failure."""
    try:
        return load_input(read_bytes(path, limits.max_file_bytes), spec, limits.max_pixels, notes)
    except ImageError as exc:
        raise about(exc, path) from None


def about(error: ImageError, path: str | Path) -> ImageError:
    """``error`` with the file's (escaped) name in front of its message, unless it already names it."""
    name = shown(path)
    if not str(error).startswith(name):
        error.args = (f"{name}: {error}",)
    return error


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Re-encode an RGB image as JPEG (used for robustness evaluation)."""
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CorruptImage("JPEG encoder failed")
    return buffer.tobytes()


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an RGB image losslessly as PNG."""
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise CorruptImage("PNG encoder failed")
    return buffer.tobytes()
