"""Every kind of photo the shipped photo classifier meets gets a verdict from it (or a recorded error):
sizes from its smallest side up, panoramas, greyscale, alpha, 16-bit PNG, CMYK JPEG and the first frame of
animated GIF and WebP, scored from as many crops as their size calls for."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fakewatch.config import load_settings
from fakewatch.imaging import crop_count
from fakewatch.registry import Registry


def _photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour fields with noise: something between a photo and a render, at any size."""
    small = rng.integers(0, 256, (max(2, height // 32), max(2, width // 32), 3), dtype=np.uint8)
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)


def _write(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (height, width) of each file written."""
    rng = np.random.default_rng(11)
    folder.mkdir(parents=True)
    sizes: dict[str, tuple[int, int]] = {}

    def save(name: str, image: Image.Image, **options: object) -> None:
        image.save(folder / name, **options)
        sizes[name] = (image.height, image.width)

    save("smallest.jpg", Image.fromarray(_photo(rng, 128, 128)), quality=90)
    save("panorama.jpg", Image.fromarray(_photo(rng, 160, 2400)), quality=90)
    save("large.jpg", Image.fromarray(_photo(rng, 3000, 4000)), quality=85)
    save("grey.jpg", Image.fromarray(_photo(rng, 400, 300)).convert("L"), quality=90)
    save("alpha.png", Image.fromarray(np.dstack([_photo(rng, 300, 300), rng.integers(0, 256, (300, 300),
                                                                                     dtype=np.uint8)])))
    deep = (_photo(rng, 256, 320)[..., 0].astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "sixteen-bit.png"), np.dstack([deep, deep, deep]))
    sizes["sixteen-bit.png"] = (256, 320)
    save("cmyk.jpg", Image.fromarray(_photo(rng, 300, 400)).convert("CMYK"), quality=90)
    frames = [Image.fromarray(_photo(rng, 256, 256)) for _ in range(3)]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100, quality=80)
    (folder / "animated.webp").write_bytes(buffer.getvalue())
    sizes["animated.webp"] = (256, 256)
    return sizes


def test_every_kind_of_photo_gets_the_photo_classifiers_verdict(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fakewatch.cli import cli

    env = {"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_CLASSIFIER": "", "FAKEWATCH_CONFIG": "",
           "FAKEWATCH_DATABASE_URL": "", "FAKEWATCH_BROKER_URL": ""}  # the shipped classifiers
    sizes = _write(tmp_path / "in")
    result = CliRunner().invoke(cli, ["scan", "--format", "json", str(tmp_path / "in")], env=env, obj={},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == set(sizes)
    settings = load_settings(env={key: value for key, value in env.items() if value})
    registry = Registry(settings)
    photo = registry.find(registry.active_versions()["photo"])
    for name, row in rows.items():
        assert row["status"] == "done", (name, row)
        assert row["classifier"] == photo.version and row["label"] in ("fake", "real", "uncertain"), (name, row)
        assert 0.0 <= row["p_fake"] <= 1.0
    counts = {name: crop_count(*sizes[name], photo.spec) for name in sizes}
    assert counts["smallest.jpg"] == 1 and counts["large.jpg"] == photo.spec.max_crops
    if photo.spec.pixels_per_crop:  # crops follow the image's size
        assert counts["large.jpg"] > counts["smallest.jpg"]
