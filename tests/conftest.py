"""Shared fixtures: isolated settings, generated images, stand-in and tiny trained classifiers.

Pipeline tests use ``stand_in_classifier`` (the pixel-hash engine: deterministic, no TensorFlow). Tests of
the networks themselves use ``tiny_classifier``, trained end to end, and are marked ``slow``.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fakewatch.classifiers.pixel_hash import write_pixel_hash_version
from fakewatch.config import Limits, Settings, load_settings
from fakewatch.registry import ClassifierVersion

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"home": str(tmp_path / "home")}, env={})


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed; returns whether it came true.
    Tests wait on a condition, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def smooth_image(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A 'real-looking' image: a smooth colour gradient."""
    ramp = np.linspace(0, 1, size)
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-40, 40, 3)
    image = base + slope * (ramp[:, None, None] + ramp[None, :, None]) / 2
    return np.clip(image, 0, 255).astype(np.uint8)


def noisy_image(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A 'fake-looking' image: the same kind of gradient with strong high-frequency texture."""
    image = smooth_image(rng, size).astype(np.float64) + rng.normal(0, 45, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image(path: Path, rgb: np.ndarray, fmt: str = "JPEG", **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **options)
    path.write_bytes(buffer.getvalue())
    return path


def make_labelled_folder(root: Path, per_class: int = 100, seed: int = 0, size: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    for index in range(per_class):
        write_image(root / "real" / f"real_{index:04d}.jpg", smooth_image(rng, size), quality=95)
        write_image(root / "fake" / f"fake_{index:04d}.jpg", noisy_image(rng, size), quality=95)
    return root


@pytest.fixture(scope="session")
def labelled_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_labelled_folder(tmp_path_factory.mktemp("labelled"), per_class=100)


@pytest.fixture(scope="session")
def stand_in_classifier(tmp_path_factory: pytest.TempPathFactory) -> ClassifierVersion:
    """A pixel-hash classifier version: deterministic verdicts without TensorFlow."""
    return write_pixel_hash_version(tmp_path_factory.mktemp("stand-in") / "hash-a", "hash-a")


@pytest.fixture(scope="session")
def other_stand_in(tmp_path_factory: pytest.TempPathFactory) -> ClassifierVersion:
    """A second pixel-hash version with another key (other verdicts), for switching between versions."""
    return write_pixel_hash_version(tmp_path_factory.mktemp("stand-in") / "hash-b", "hash-b", key="other")


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory, labelled_folder: Path):  # type: ignore[no-untyped-def]
    """A real classifier trained end to end on ~200 generated images (session-scoped: it costs seconds)."""
    from fakewatch.registry import Registry
    from fakewatch.training.options import TrainOptions
    from fakewatch.training.train import train

    home = tmp_path_factory.mktemp("tiny-home")
    registry = Registry(load_settings({"home": str(home)}, env={}))
    options = TrainOptions(str(labelled_folder), default_limits(), arch="cnn", epochs=10, batch_size=32, patience=5,
                           verbose=0,
                           valid_fraction=0.2, test_fraction=0.2, learning_rate=2e-3)
    return train(options, registry, log_progress=lambda message: None)


def default_limits() -> Limits:
    """The default file-size and pixel limits, as every command would use them."""
    return load_settings(env={}).limits


def encode_png(array: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", array)
    assert ok
    return buffer.tobytes()
