"""The inference runtime: batches of prepared images in, calibrated ``p_fake`` out.

:class:`Classifier` is the interface the scanner and workers use. :class:`KerasClassifier` runs a
registry version through one compiled TensorFlow function (never ``model.predict`` per image).
TensorFlow is imported only when a Keras classifier is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fakewatch.errors import IncompatibleClassifier
from fakewatch.imaging import InputSpec
from fakewatch.registry import ClassifierVersion


class Classifier(Protocol):
    version: str
    spec: InputSpec
    threshold: float

    def predict(self, images: np.ndarray) -> np.ndarray:
        """N x size x size x 3 uint8 RGB -> N calibrated probabilities that each image is fake."""
        ...


@dataclass(frozen=True)
class Verdict:
    label: str  # "fake", "real" or "uncertain"
    p_fake: float
    confidence: float


def decide(p_fake: float, threshold: float, uncertain_margin: float) -> Verdict:
    """Turn a calibrated probability into a label; near the threshold the answer is 'uncertain'."""
    if abs(p_fake - threshold) < uncertain_margin:
        label = "uncertain"
    else:
        label = "fake" if p_fake >= threshold else "real"
    return Verdict(label, float(p_fake), float(max(p_fake, 1.0 - p_fake)))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))


class KerasClassifier:
    """A registry version loaded for inference."""

    def __init__(self, version: ClassifierVersion, batch_size: int = 256) -> None:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf

        from fakewatch.training import architectures  # noqa: F401  registers custom layers

        _enable_gpu_memory_growth(tf)
        self.version = version.version
        self.spec = version.spec
        self.threshold = version.threshold
        self.temperature = version.temperature
        self.batch_size = batch_size
        try:
            model = keras.saving.load_model(version.weights, compile=False)
            logits_model = keras.Model(model.inputs, model.get_layer("logit").output)
        except (ValueError, OSError, KeyError) as exc:
            raise IncompatibleClassifier(f"{version.path}: cannot load {version.weights.name}: {exc}") from exc
        expected = (None, self.spec.size, self.spec.size, 3)
        if tuple(model.input_shape) != expected:
            raise IncompatibleClassifier(f"{version.path}: network input {model.input_shape} does not match "
                                         f"the card's input spec {expected}")
        self._logits = tf.function(
            lambda batch: logits_model(tf.cast(batch, tf.float32), training=False),
            input_signature=[tf.TensorSpec((None, self.spec.size, self.spec.size, 3), tf.uint8)],
        )
        self._logits(np.zeros((1, self.spec.size, self.spec.size, 3), np.uint8))  # trace now, not mid-scan

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Raw network logits (before temperature), computed in batches of ``batch_size``."""
        if len(images) == 0:
            return np.zeros((0,), dtype=np.float32)
        parts = [self._logits(images[start:start + self.batch_size]).numpy().reshape(-1)
                 for start in range(0, len(images), self.batch_size)]
        return np.concatenate(parts)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return _sigmoid(self.logits(images).astype(np.float64) / self.temperature)


def _enable_gpu_memory_growth(tf: Any) -> None:
    """Let several worker processes share one GPU instead of the first taking all its memory."""
    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:
            pass  # already initialised in this process; growth was set earlier


def load(version: ClassifierVersion, batch_size: int = 256) -> Classifier:
    return KerasClassifier(version, batch_size)
