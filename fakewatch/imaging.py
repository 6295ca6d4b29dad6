"""The one path from file bytes to classifier input, shared by training, evaluation and scanning.

bytes -> :func:`sniff` (magic bytes, not the extension) -> header size check (decompression-bomb guard)
-> OpenCV decode to 8-bit RGB (EXIF orientation applied; grey, alpha, 16-bit, CMYK and palette images
converted; first frame of animations) -> :func:`resize_for` the classifier's :class:`InputSpec`.

Arrays stay uint8 RGB; scaling to [0, 1] happens inside the classifier, so the spec stored with the
weights is the whole contract.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakewatch.config import Limits
from fakewatch.errors import (
    CorruptImage,
    EmptyFile,
    ImageError,
    TooLargeImage,
    UnreadableFile,
    UnsupportedImage,
)

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


def read_bytes(path: str | Path, max_file_bytes: int) -> bytes:
    """Read a file whole, turning I/O trouble into the matching :class:`ImageError`."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except FileNotFoundError as exc:
        raise UnreadableFile(f"{path}: file vanished before it could be read") from exc
    except PermissionError as exc:
        raise UnreadableFile(f"{path}: permission denied; give the scanning user read access") from exc
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from exc
    if len(data) > max_file_bytes:
        raise TooLargeImage(f"{path}: larger than max_file_bytes={max_file_bytes}")
    return data


def _header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """Width and height read straight from a PNG, GIF, BMP or JPEG header; None when not found here."""
    if kind == "png" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if kind == "gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if kind == "bmp" and len(data) >= 26:
        return abs(int.from_bytes(data[18:22], "little", signed=True)), \
            abs(int.from_bytes(data[22:26], "little", signed=True))
    if kind == "jpeg":
        return _jpeg_size(data)
    return None


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn markers (not DHT, JPG, DAC)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk JPEG segments to the first start-of-frame marker and read its size."""
    position, end = 2, len(data)
    while position + 9 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_FRAMES:
            height = int.from_bytes(data[position + 5:position + 7], "big")
            width = int.from_bytes(data[position + 7:position + 9], "big")
            return (width, height) if width and height else None
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    return None


def _pillow() -> Any:
    """Pillow, imported on first use (only headers the fast parsers above do not cover need it)."""
    from PIL import Image as PILImage

    PILImage.MAX_IMAGE_PIXELS = None  # it only reads headers here; the pixel limit is ours (max_pixels)
    return PILImage


def _check_dimensions(data: bytes, kind: str, max_pixels: int) -> None:
    """Refuse images whose header announces more than ``max_pixels`` before anything is decoded.

    Common headers are parsed here directly (a few microseconds); the rest go through Pillow, which
    only reads the header."""
    size = _header_size(data, kind)
    if size is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _pillow().open(io.BytesIO(data)) as header:
                    size = header.size
        except Exception as exc:  # Pillow raises many types for damaged headers
            raise CorruptImage(f"cannot read image header: {exc}") from exc
    width, height = size
    if width * height > max_pixels:
        raise TooLargeImage(f"{width}x{height} pixels is over max_pixels={max_pixels} "
                            f"(decompression-bomb guard; raise FAKEWATCH_MAX_PIXELS to allow it)")


def _check_complete(data: bytes, kind: str) -> None:
    """Catch truncation that decoders would silently paint grey."""
    if kind == "jpeg" and b"\xff\xd9" not in data[-4096:]:
        raise CorruptImage("truncated JPEG: no end-of-image marker")
    if kind == "png" and b"IEND" not in data[-64:]:
        raise CorruptImage("truncated PNG: no IEND chunk")


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode image bytes to an HxWx3 uint8 RGB array, or raise an :class:`ImageError`."""
    if not data:
        raise EmptyFile("zero-byte file")
    kind = sniff(data[:16])
    if kind is None:
        raise UnsupportedImage("not a JPEG, PNG, WebP, BMP, TIFF or GIF image (checked by content)")
    _check_dimensions(data, kind, max_pixels)
    _check_complete(data, kind)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        rgb = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB)
    except cv2.error as exc:
        raise CorruptImage(f"{kind} decoder failed: {exc}") from exc
    if rgb is None or rgb.size == 0:
        raise CorruptImage(f"damaged {kind} data: the decoder could not read it")
    return rgb


def resize_for(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize a decoded RGB image to the classifier's input size."""
    if rgb.shape[0] == spec.size and rgb.shape[1] == spec.size:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (spec.size, spec.size), interpolation=cv2.INTER_AREA)


def load_input(data: bytes, spec: InputSpec, max_pixels: int) -> np.ndarray:
    """Bytes to the exact array the classifier sees: ``spec.size`` x ``spec.size`` x 3 uint8 RGB."""
    return resize_for(decode(data, max_pixels), spec)


def load_file(path: str | Path, spec: InputSpec, limits: Limits) -> np.ndarray:
    """Read and prepare one file; raises :class:`ImageError` with a recorded kind on failure."""
    try:
        return load_input(read_bytes(path, limits.max_file_bytes), spec, limits.max_pixels)
    except ImageError as exc:
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from exc


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
