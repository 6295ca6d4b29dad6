"""The ``pixel-hash`` engine: p_fake from a keyed hash of the pixels. Deterministic, needs no TensorFlow
and knows nothing about fakes; for testing the pipeline and smoke-testing a deployment
(:func:`write_pixel_hash_version` creates one)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from fakewatch import registry
from fakewatch.classifiers.base import Pending, Views, submit
from fakewatch.imaging import InputSpec
from fakewatch.registry import ClassifierVersion


class PixelHashClassifier:
    """p_fake is a keyed BLAKE2 hash of the image's pixels, scaled to [0, 1): the same pixels always give
    the same answer, different pixels an unrelated one. It detects nothing."""

    views: Views | None = None

    def __init__(self, version: ClassifierVersion) -> None:
        self.version = version.version
        self.spec = version.spec
        self.threshold = version.threshold
        version.check_weights()
        self.key = json.loads(version.weights.read_text(encoding="utf-8"))["key"].encode()

    def probability(self, image: np.ndarray) -> float:
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8, key=self.key).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.array([self.probability(image) for image in images], dtype=np.float64)

    def start(self, images: np.ndarray, executor: Executor) -> Pending:
        return submit(executor, self.predict, images)


def write_pixel_hash_version(directory: Path, version: str, size: int = 32, threshold: float = 0.5,
                             key: str = "fakewatch", domain: dict[str, object] | None = None,
                             crops: str = "resize", max_crops: int = 1) -> ClassifierVersion:
    """Create a pixel-hash classifier version in ``directory`` (for tests and smoke tests); without a
    ``domain`` it takes images of every size."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = "pixel-hash.json"
    (directory / weights).write_text(json.dumps({"key": key}) + "\n", encoding="utf-8")
    registry.write_card(directory, {
        "version": version, "engine": "pixel-hash", "weights_file": weights, "architecture": "pixel-hash",
        "input_spec": InputSpec(size=size, crops=crops, max_crops=max_crops).to_dict(), "threshold": threshold,
        "temperature": 1.0, "domain": domain or {"name": registry.CATCH_ALL, "min_side": 1, "max_side": None},
        "training_data": {"description": "none: a deterministic hash of the pixels, not a detector"},
        "metrics": {}, "parent": None,
    })
    return registry.read_version(directory)
