"""Classifiers: batches of prepared images in, calibrated ``p_fake`` out, and the decision on top.

:class:`Classifier` is the interface the classification runtime, evaluation and refresh use; :func:`load`
turns a registry version into one, by the ``engine`` its card names:

    keras       a trained network: run from its ONNX export by :mod:`fakewatch.onnx_classifier` (runtime
                ``lite``, no TensorFlow), or by :mod:`fakewatch.keras_classifier` (runtime ``keras``, and
                for versions without an export, with a warning)
    pixel-hash  :class:`PixelHashClassifier`: p_fake from a keyed hash of the pixels. Deterministic, needs
                no TensorFlow and knows nothing about fakes; for testing the pipeline and smoke-testing a
                deployment (:func:`write_pixel_hash_version` creates one)

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fakewatch import registry
from fakewatch.imaging import InputSpec
from fakewatch.registry import ClassifierVersion

log = logging.getLogger(__name__)


class Classifier(Protocol):
    version: str
    spec: InputSpec
    threshold: float

    def predict(self, images: np.ndarray) -> np.ndarray:
        """N x size x size x 3 uint8 RGB -> N calibrated probabilities that each image is fake."""
        ...


@dataclass(frozen=True)
class Decision:
    """What one calibrated probability means, before it is stored as a verdict."""

    label: str  # "fake", "real" or "uncertain"
    p_fake: float
    confidence: float


def decide(p_fake: float, threshold: float, uncertain_margin: float) -> Decision:
    """Turn a calibrated probability into a label; near the threshold the answer is 'uncertain'."""
    if abs(p_fake - threshold) < uncertain_margin:
        label = "uncertain"
    else:
        label = "fake" if p_fake >= threshold else "real"
    return Decision(label, float(p_fake), float(max(p_fake, 1.0 - p_fake)))


@dataclass(frozen=True)
class Views:
    """A fused photo classifier's two views, each calibrated and thresholded on validation images on its own
    (``views`` in the card): where one calls an image fake and the other real, each beyond the uncertain
    margin of its own threshold, the fused verdict's uncertain band is widened (:data:`DISAGREEMENT_WIDENING`)."""

    temperatures: tuple[float, float]
    thresholds: tuple[float, float]

    @classmethod
    def from_card(cls, card: dict[str, object]) -> Views | None:
        views = card.get("views")
        if not isinstance(views, dict):
            return None
        try:
            semantic, residual = views["semantic"], views["residual"]
            return cls((float(semantic["temperature"]), float(residual["temperature"])),
                       (float(semantic["threshold"]), float(residual["threshold"])))
        except (KeyError, TypeError, ValueError):
            return None

    def probabilities(self, logits: np.ndarray) -> tuple[float, float]:
        return (float(calibrated(np.asarray([logits[0]]), self.temperatures[0])[0]),
                float(calibrated(np.asarray([logits[1]]), self.temperatures[1])[0]))

    def disagree(self, logits: np.ndarray, margin: float) -> bool:
        first, second = self.probabilities(logits)
        fake = (first >= self.thresholds[0] + margin, second >= self.thresholds[1] + margin)
        real = (first < self.thresholds[0] - margin, second < self.thresholds[1] - margin)
        return (fake[0] and real[1]) or (real[0] and fake[1])


DISAGREEMENT_WIDENING = 2.0  # where the views disagree, ``uncertain`` reaches this many margins from the threshold


def judge_views(p_fake: float, classifier: Classifier, view_logits: np.ndarray | None,
                margin: float) -> tuple[Decision, str | None]:
    """:func:`decide`, with the uncertain band widened where a fused classifier's two views disagree; the
    second value says so (the verdict's ``reason_detail``), or is None."""
    views = getattr(getattr(classifier, "loaded", classifier), "views", None)
    if not isinstance(views, Views) or view_logits is None or not views.disagree(view_logits, margin):
        return decide(p_fake, classifier.threshold, margin), None
    first, second = views.probabilities(view_logits)
    decision = decide(p_fake, classifier.threshold, margin * DISAGREEMENT_WIDENING)
    return decision, (f"the backbone view and the residual view disagree (p_fake {first:.2f} and {second:.2f}): "
                      f"uncertain within {margin * DISAGREEMENT_WIDENING:.2f} of the threshold")


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """p_fake from raw network logits: ``sigmoid(logit / temperature)``, in float64."""
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


class PixelHashClassifier:
    """p_fake is a keyed BLAKE2 hash of the image's pixels, scaled to [0, 1): the same pixels always give
    the same answer, different pixels an unrelated one. It detects nothing."""

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


def aggregate(p_fake: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """One calibrated p_fake per image from its crops' p_fake: the sigmoid of their mean logit (the same as
    averaging raw logits before the temperature). Images with a single crop keep its value exactly."""
    p_fake = np.asarray(p_fake, dtype=np.float64)
    if len(p_fake) == count:
        return p_fake
    clipped = np.clip(p_fake, 1e-15, 1 - 1e-15)
    logits = np.log(clipped) - np.log1p(-clipped)
    means = np.bincount(owners, weights=logits, minlength=count) / np.maximum(np.bincount(owners, minlength=count), 1)
    return sigmoid(means)


def predict_prepared(classifier: Classifier, prepared: list[np.ndarray]) -> np.ndarray:
    """p_fake per image from each image's crops (``imaging.prepare``), in one call to the classifier."""
    if not prepared:
        return np.zeros(0)
    images, owners = _stacked(prepared)
    return aggregate(classifier.predict(images), owners, len(prepared))


def _stacked(prepared: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every image's crops in one array, and the index of the image each crop belongs to."""
    return np.concatenate(prepared), np.repeat(np.arange(len(prepared)), [len(crops) for crops in prepared])


class Pending(Protocol):
    def result(self) -> np.ndarray: ...


@dataclass
class _Aggregated:
    crops: Pending
    owners: np.ndarray
    count: int

    def result(self) -> np.ndarray:
        return aggregate(self.crops.result(), self.owners, self.count)

    def views(self) -> np.ndarray | None:
        """Per image, the mean of its crops' view logits (N x 2), when the classifier gives them."""
        crop_views = getattr(self.crops, "views", lambda: None)()
        if crop_views is None:
            return None
        counts = np.maximum(np.bincount(self.owners, minlength=self.count), 1)
        return np.column_stack([np.bincount(self.owners, weights=crop_views[:, column], minlength=self.count) / counts
                                for column in range(crop_views.shape[1])])


def start_prepared(classifier: Classifier, prepared: list[np.ndarray], executor: Executor) -> Pending:
    """:func:`predict_prepared` begun now and finished by ``result()``: on the classifier's own lanes when
    it has them (``start``, as ONNX Runtime on a CPU), else as one call on ``executor``."""
    if not prepared:
        return executor.submit(np.zeros, 0)
    images, owners = _stacked(prepared)
    own = getattr(classifier, "start", None)
    crops: Pending = own(images) if own is not None else executor.submit(classifier.predict, images)
    return _Aggregated(crops, owners, len(prepared))


def load(version: ClassifierVersion, batch_size: int = 256, runtime: str = "lite", threads: int = 0) -> Classifier:
    """The classifier for a registry version, by its card's engine and the ``runtime`` setting; ``threads``
    is the lite runtime's thread count (0: one per core)."""
    if version.engine == "pixel-hash":
        return PixelHashClassifier(version)
    if runtime == "lite" and version.export is not None:
        from fakewatch.onnx_classifier import OnnxClassifier

        return OnnxClassifier(version, batch_size, threads)
    if runtime == "lite":
        log.warning("classifier %s has no ONNX export, so it runs through TensorFlow (slower to start); "
                    "add one with `fakewatch classifiers export %s`", version.version, version.version)
    from fakewatch.keras_classifier import KerasClassifier

    return KerasClassifier(version, batch_size)
