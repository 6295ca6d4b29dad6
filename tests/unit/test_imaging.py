import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fakewatch import imaging
from fakewatch.errors import CorruptImage, EmptyFile, TooLargeImage, UnreadableFile, UnsupportedImage
from tests.conftest import default_limits, encode_png

LIMITS = default_limits()


def _bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of width x height pixels, compressed to a few hundred kilobytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt, kind", [("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("BMP", "bmp"),
                                       ("TIFF", "tiff"), ("WEBP", "webp")])
def test_type_comes_from_magic_bytes(fmt: str, kind: str) -> None:
    data = _bytes(Image.new("RGB", (8, 8), (200, 10, 10)), fmt)
    assert imaging.sniff(data[:16]) == kind
    rgb = imaging.decode(data, LIMITS.max_pixels)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8


def test_extension_is_irrelevant(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(_bytes(Image.new("RGB", (8, 8), (255, 0, 0)), "PNG"))
    assert imaging.load_file(path, imaging.InputSpec(size=8), LIMITS)[0, 0].tolist() == [255, 0, 0]


def test_colour_order_is_rgb() -> None:
    rgb = imaging.decode(_bytes(Image.new("RGB", (4, 4), (255, 0, 0)), "PNG"), LIMITS.max_pixels)
    assert rgb[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (20, 10), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    assert imaging.decode(_bytes(image, "JPEG", exif=exif), LIMITS.max_pixels).shape == (20, 10, 3)


@pytest.mark.parametrize("image, fmt", [
    (Image.new("L", (6, 6), 128), "PNG"),
    (Image.new("LA", (6, 6), (128, 50)), "PNG"),
    (Image.new("RGBA", (6, 6), (0, 255, 0, 60)), "PNG"),
    (Image.new("P", (6, 6), 7), "PNG"),
    (Image.new("CMYK", (6, 6), (0, 255, 255, 0)), "JPEG"),
])
def test_other_colour_modes_become_rgb(image: Image.Image, fmt: str) -> None:
    rgb = imaging.decode(_bytes(image, fmt), LIMITS.max_pixels)
    assert rgb.shape == (6, 6, 3) and rgb.dtype == np.uint8


def test_cmyk_colours_survive() -> None:
    rgb = imaging.decode(_bytes(Image.new("CMYK", (6, 6), (0, 255, 255, 0)), "JPEG"), LIMITS.max_pixels)
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 1] < 40 and rgb[0, 0, 2] < 40  # red


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    deep = np.full((5, 5, 3), 40000, dtype=np.uint16)
    rgb = imaging.decode(encode_png(deep), LIMITS.max_pixels)
    assert rgb.dtype == np.uint8 and rgb[0, 0, 0] == 40000 >> 8


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    rgb = imaging.decode(buffer.getvalue(), LIMITS.max_pixels)
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 2] < 50


def test_zero_bytes() -> None:
    with pytest.raises(EmptyFile):
        imaging.decode(b"", LIMITS.max_pixels)


def test_text_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage):
        imaging.decode(b"hello, I am a text file pretending to be a PNG\n", LIMITS.max_pixels)


def test_truncated_jpeg_is_corrupt() -> None:
    data = _bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(CorruptImage):
        imaging.decode(data[: len(data) // 2], LIMITS.max_pixels)


def test_damaged_png_is_corrupt() -> None:
    data = bytearray(_bytes(Image.new("RGB", (16, 16), (1, 2, 3)), "PNG"))
    data[40:60] = b"\x00" * 20
    with pytest.raises(CorruptImage):
        imaging.decode(bytes(data), LIMITS.max_pixels)


def test_pixel_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(20_000, 20_000)
    assert len(bomb) < 2_000_000
    with pytest.raises(TooLargeImage, match="20000x20000"):
        imaging.decode(bomb, max_pixels=100_000_000)


def test_max_pixels_is_a_setting() -> None:
    data = _bytes(Image.new("RGB", (100, 100)), "PNG")
    imaging.decode(data, max_pixels=10_000)
    with pytest.raises(TooLargeImage):
        imaging.decode(data, max_pixels=9_999)


def test_max_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(_bytes(Image.new("RGB", (64, 64)), "PNG"))
    with pytest.raises(TooLargeImage):
        imaging.read_bytes(path, max_file_bytes=10)


def test_missing_and_looping_paths_are_unreadable(tmp_path: Path) -> None:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    for path in (tmp_path / "missing.jpg", loop):
        with pytest.raises(UnreadableFile):
            imaging.read_bytes(path, 1000)


def test_resize_uses_area_interpolation_to_square() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    out = imaging.resize_for(rgb, imaging.InputSpec(size=32))
    assert out.shape == (32, 32, 3)
    assert np.array_equal(out, cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("fmt, options", [
    ("JPEG", {}), ("JPEG", {"progressive": True}), ("JPEG", {"exif": Image.Exif(), "quality": 60}),
    ("PNG", {}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {})])
def test_header_size_matches_pillow(fmt: str, options: dict[str, object]) -> None:
    data = _bytes(Image.new("RGB", (37, 23), (10, 200, 30)), fmt, **options)
    kind = imaging.sniff(data[:16])
    assert kind is not None
    size = imaging._header_size(data, kind)
    if fmt in ("TIFF", "WEBP"):
        assert size is None  # read through Pillow instead
    else:
        assert size == (37, 23)
    imaging._check_dimensions(data, kind, 37 * 23)
    with pytest.raises(TooLargeImage):
        imaging._check_dimensions(data, kind, 37 * 23 - 1)


def test_jpeg_bomb_is_refused_from_its_header() -> None:
    data = bytearray(_bytes(Image.new("RGB", (16, 16)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    with pytest.raises(TooLargeImage, match="60000x60000"):
        imaging.decode(bytes(data), max_pixels=100_000_000)
