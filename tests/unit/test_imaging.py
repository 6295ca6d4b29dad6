import io
import os
import socket
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fakewatch import imaging
from fakewatch.errors import (
    CorruptImage,
    EmptyFile,
    NotRegularFile,
    SymlinkLoop,
    TooLargeImage,
    UnreadableFile,
    UnsupportedImage,
)
from tests.conftest import default_limits, encode_png

LIMITS = default_limits()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    return imaging.encode_jpeg(rgb, quality)


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


def test_missing_dangling_and_looping_paths_are_refused_by_kind(tmp_path: Path) -> None:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(UnreadableFile, match="vanished"):
        imaging.read_bytes(tmp_path / "missing.jpg", 1000)
    with pytest.raises(UnreadableFile, match="dangling symlink"):
        imaging.read_bytes(tmp_path / "dangling.jpg", 1000)
    with pytest.raises(SymlinkLoop):
        imaging.read_bytes(loop, 1000)


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO (directly or through a link), a socket, a device and a folder: refused by kind, never read."""
    fifo = tmp_path / "p.jpg"
    os.mkfifo(fifo)
    (tmp_path / "l.jpg").symlink_to(fifo)
    (tmp_path / "dir.jpg").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "s.jpg"))
    cases = {"p.jpg": "fifo", "l.jpg": "fifo", "dir.jpg": "directory", "s.jpg": "socket"}
    if os.path.exists("/dev/null"):
        cases["/dev/null"] = "device"
    try:
        for name, kind in cases.items():
            with pytest.raises(NotRegularFile) as raised:
                imaging.read_bytes(tmp_path / name, 1000)  # a blocking open would hang here
            assert raised.value.kind == kind, name
    finally:
        server.close()


def test_jpeg_and_png_with_trailing_data_are_whole(tmp_path: Path) -> None:
    """Motion photos and MPF files carry data after EOI; PNGs may carry bytes after IEND: not truncation."""
    rgb = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    jpeg = encode_jpeg(rgb)
    trailer = b"ftypmp42" + bytes(range(256)) * 40  # a motion photo's video, far beyond 4 KB
    decoded = imaging.decode(jpeg + trailer, 10**6)
    assert np.array_equal(decoded, imaging.decode(jpeg, 10**6))
    png = encode_png(rgb)
    assert np.array_equal(imaging.decode(png + b"\0" * 5000, 10**6), imaging.decode(png, 10**6))
    with pytest.raises(CorruptImage, match="truncated"):
        imaging.decode((jpeg + trailer)[: len(jpeg) - 10], 10**6)
    with pytest.raises(CorruptImage, match="truncated"):
        imaging.decode(png[:-20], 10**6)


def test_an_exif_thumbnail_end_marker_does_not_make_a_cut_jpeg_whole() -> None:
    rgb = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    thumbnail = encode_jpeg(rgb[:8, :8])
    app1 = b"Exif\0\0" + thumbnail
    jpeg = encode_jpeg(rgb)
    with_thumbnail = jpeg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpeg[2:]
    assert imaging.decode(with_thumbnail, 10**6).shape == (64, 64, 3)
    with pytest.raises(CorruptImage, match="truncated"):
        imaging.decode(with_thumbnail[: len(with_thumbnail) // 2 + 200], 10**6)


def test_decoder_chatter_is_captured_not_printed(capfd: pytest.CaptureFixture[str]) -> None:
    """A JPEG with a damaged scan: libjpeg's complaint becomes the error, and stderr stays clean."""
    rgb = cv2.GaussianBlur(np.random.default_rng(4).integers(0, 255, (128, 128, 3), dtype=np.uint8), (9, 9), 3)
    data = bytearray(encode_jpeg(rgb))
    middle = (data.index(b"\xff\xda") + len(data)) // 2
    data[middle:middle + 200] = b"\xfe" * 200  # a run of garbage, as a bad sector leaves
    with pytest.raises(CorruptImage, match="damaged jpeg data: Corrupt JPEG data: premature end"):
        imaging.decode(bytes(data), 10**6)
    assert capfd.readouterr().err == ""


def test_decoder_warnings_become_notes_and_the_image_still_decodes(capfd: pytest.CaptureFixture[str]) -> None:
    rgb = np.random.default_rng(5).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    data = encode_jpeg(rgb)
    padded = data[:-2] + b"\x00" * 10 + data[-2:]  # stray bytes before EOI: libjpeg warns, the picture is whole
    notes: list[str] = []
    assert np.array_equal(imaging.decode(padded, 10**6, notes), imaging.decode(data, 10**6))
    assert notes and "extraneous bytes" in notes[0]
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("shape", [(1, 1), (1, 5000), (224, 224), (225, 400), (336, 336), (300, 4000),
                                   (4000, 300), (1024, 1024), (223, 900)])
def test_tiles_cover_any_size_and_never_read_outside(shape: tuple[int, int]) -> None:
    spec = imaging.InputSpec(size=224, crops="tiles", max_crops=5)
    rgb = np.arange(shape[0] * shape[1] * 3, dtype=np.uint32).reshape(*shape, 3).astype(np.uint8)
    crops = imaging.prepare(rgb, spec)
    assert crops.shape[1:] == (224, 224, 3) and 1 <= len(crops) <= 5
    grown = imaging.fit_min_side(rgb, 224)
    for top, left in imaging.tile_origins(grown.shape[0], grown.shape[1], 224, 5):
        assert 0 <= top <= grown.shape[0] - 224 and 0 <= left <= grown.shape[1] - 224


def test_tiles_are_native_resolution_crops_centre_first() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1024, 768, 3), dtype=np.uint8)
    crops = imaging.prepare(rgb, imaging.InputSpec(size=224, crops="tiles", max_crops=5))
    assert len(crops) == 5
    assert np.array_equal(crops[0], rgb[400:624, 272:496])  # the centre, untouched pixels
    assert np.array_equal(crops[1], rgb[:224, :224])
    assert len(imaging.prepare(rgb, imaging.InputSpec(size=224, crops="tiles", max_crops=1))) == 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_dimensions_come_from_the_header_and_match_the_decoded_image(fmt: str) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (37, 203, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    data = buffer.getvalue()
    assert imaging.dimensions(data) == (37, 203) == imaging.decode(data, 10**8).shape[:2]
    with pytest.raises(imaging.ImageError):
        imaging.dimensions(b"not an image at all")


def test_reading_without_following_links_takes_plain_files_only(tmp_path: Path) -> None:
    """Intake's one-open read: plain files with their status; a symlink is refused rather than followed, and
    special, oversized and missing files are refused as :func:`read_bytes` refuses them."""
    plain = tmp_path / "a.jpg"
    plain.write_bytes(b"\xff\xd8" + b"x" * 100)
    data, status = imaging.read_with_status(str(plain), 1000, follow_link=False)
    assert data == plain.read_bytes() and status.st_mtime == os.stat(plain).st_mtime
    link = tmp_path / "link.jpg"
    link.symlink_to(plain)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert imaging.read_with_status(str(link), 1000)[0] == data  # followed by default
    with pytest.raises(SymlinkLoop):
        imaging.read_with_status(str(link), 1000, follow_link=False)
    with pytest.raises(NotRegularFile):
        imaging.read_with_status(str(fifo), 1000, follow_link=False)  # never blocks on a FIFO
    with pytest.raises(TooLargeImage):
        imaging.read_with_status(str(plain), 50, follow_link=False)
    with pytest.raises(UnreadableFile):
        imaging.read_with_status(str(tmp_path / "gone.jpg"), 1000, follow_link=False)


def test_one_walk_of_a_jpeg_serves_the_decoder_checks_and_the_metadata_readers() -> None:
    """jpeg.layout: the frame size, the header segments (an EXIF block with a thumbnail inside, skipped
    whole), completeness through every scan of a progressive file, and why a cut header stopped the walk;
    the decoder and the metadata reader given that walk answer as they do on their own."""
    from fakewatch import jpeg
    from fakewatch.evidence.containers import blocks

    rgb = np.random.default_rng(5).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    app1 = b"Exif\0\0" + encode_jpeg(rgb[:8, :8])
    plain = encode_jpeg(rgb)
    data = plain[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + plain[2:]
    layout = jpeg.layout(data)
    assert layout.frame == (80, 48) and layout.complete and layout.problem is None
    assert layout.segments[0] == (0xE1, 6, 4 + len(app1) + 2)
    assert 0xDA not in {marker for marker, _, _ in layout.segments}  # the header ends at the first scan
    assert np.array_equal(imaging.decode(data, 10**6, layout=layout), imaging.decode(data, 10**6))
    assert blocks(data, "jpeg", layout) == blocks(data, "jpeg") and blocks(data, "jpeg").exif

    ok, progressive = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and progressive.tobytes().count(b"\xff\xda") > 1 and jpeg.layout(progressive.tobytes()).complete
    assert not jpeg.layout(plain[:-2]).complete  # no end-of-image marker
    cut = data[:40]  # inside the EXIF block
    assert jpeg.layout(cut) == ((), None, False, "JPEG segment 0xe1 runs past the end of the file")
    with pytest.raises(CorruptImage):
        imaging.decode(cut, 10**6)


def test_larger_images_get_more_crops_up_to_the_cap() -> None:
    from fakewatch.imaging import InputSpec, crop_count, prepare

    spec = InputSpec(size=64, crops="tiles", max_crops=5, pixels_per_crop=100_000)
    assert [crop_count(h, w, spec) for h, w in ((128, 128), (300, 400), (1000, 1000))] == [1, 2, 5]
    rgb = np.zeros((300, 400, 3), np.uint8)
    assert prepare(rgb, spec).shape == (2, 64, 64, 3)
    assert prepare(rgb, InputSpec(size=64, crops="tiles", max_crops=5)).shape[0] == 5  # 0: always the cap
