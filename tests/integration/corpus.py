"""A corpus of awkward files, each with the outcome a user should see."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import encode_png
from tests.unit.test_imaging import png_bomb


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write_bad_corpus(folder: Path) -> dict[str, str | None]:
    """Write the files; return file name -> expected error kind (None: must classify fine)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    photo = _save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG", quality=90)
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    files: dict[str, tuple[bytes, str | None]] = {
        "truncated.jpg": (photo[: len(photo) // 2], "corrupt"),
        "zero.jpg": (b"", "empty"),
        "text.png": (b"this is not a picture\n" * 10, "unsupported"),
        "bomb.png": (png_bomb(20_000, 20_000), "too_large"),
        "cmyk.jpg": (_save(Image.new("CMYK", (40, 40), (0, 200, 200, 10)), "JPEG"), None),
        "deep16.png": (encode_png(np.full((20, 20, 3), 30000, dtype=np.uint16)), None),
        "animated.gif": (gif.getvalue(), None),
        "ünïcödé фото.jpg": (photo, None),
    }
    expected: dict[str, str | None] = {}
    for name, (data, kind) in files.items():
        (folder / name).write_bytes(data)
        expected[name] = kind
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    expected["loop.jpg"] = "symlink_loop"
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    expected["dangling.png"] = "unreadable"
    if os.geteuid() != 0:  # root reads anything, so permissions can only be tested as a normal user
        locked = folder / "locked.jpg"
        locked.write_bytes(photo)
        locked.chmod(0)
        expected["locked.jpg"] = "unreadable"
    return expected
