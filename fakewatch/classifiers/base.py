"""What every classifier is: batches of prepared images in, calibrated ``p_fake`` out.

:class:`Classifier` is the interface the classification runtime, evaluation, refresh and the heatmap use;
:class:`Pending` is a batch on its way through one. Calibration (:func:`calibrated`), the per-image score
from several crops (:func:`aggregate`) and a fused network's two views as its card describes them
(:class:`Views`) are shared by every runtime. What a score means as a verdict is :mod:`fakewatch.verdicts`.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fakewatch.imaging import InputSpec


class Pending(Protocol):
    """A batch handed to a classifier: :meth:`result` waits for its p_fake."""

    def result(self) -> np.ndarray:
        """N calibrated probabilities that each image is fake."""
        ...

    def views(self) -> np.ndarray | None:
        """N x 2 raw logits of a fused network's two views (backbone, residual), or None without views."""
        ...


class Classifier(Protocol):
    """A classifier version loaded for inference."""

    @property
    def version(self) -> str: ...

    @property
    def spec(self) -> InputSpec: ...

    @property
    def threshold(self) -> float: ...

    @property
    def views(self) -> Views | None:
        """The card's two views, for a fused network whose runtime reads their logits; else None."""
        ...

    def predict(self, images: np.ndarray) -> np.ndarray:
        """N x size x size x 3 uint8 RGB -> N calibrated probabilities that each image is fake."""
        ...

    def start(self, images: np.ndarray, executor: Executor) -> Pending:
        """Begin :meth:`predict` and return at once: on the classifier's own threads when it has them (ONNX
        Runtime's lanes on a CPU), else as one call on ``executor``."""
        ...


@dataclass
class Submitted:
    """A prediction running as one call on an executor; it gives no view logits."""

    future: Future[np.ndarray]

    def result(self) -> np.ndarray:
        return self.future.result()

    def views(self) -> np.ndarray | None:
        return None


def submit(executor: Executor, predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> Submitted:
    """``predict(images)`` as one call on ``executor``: :meth:`Classifier.start` for a classifier without
    threads of its own."""
    return Submitted(executor.submit(predict, images))


@dataclass(frozen=True)
class Views:
    """A fused photo classifier's two views, each calibrated and thresholded on validation images on its own
    (``views`` in the card): :func:`fakewatch.verdicts.judge` widens the uncertain band where they disagree."""

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
        """Whether one view calls the image fake and the other real, each beyond ``margin`` of its own
        threshold."""
        first, second = self.probabilities(logits)
        fake = (first >= self.thresholds[0] + margin, second >= self.thresholds[1] + margin)
        real = (first < self.thresholds[0] - margin, second < self.thresholds[1] - margin)
        return (fake[0] and real[1]) or (real[0] and fake[1])


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """p_fake from raw network logits: ``sigmoid(logit / temperature)``, in float64."""
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


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


@dataclass
class _Aggregated:
    crops: Pending
    owners: np.ndarray
    count: int

    def result(self) -> np.ndarray:
        return aggregate(self.crops.result(), self.owners, self.count)

    def views(self) -> np.ndarray | None:
        """Per image, the mean of its crops' view logits (N x 2), when the classifier gives them."""
        crop_views = self.crops.views()
        if crop_views is None:
            return None
        counts = np.maximum(np.bincount(self.owners, minlength=self.count), 1)
        return np.column_stack([np.bincount(self.owners, weights=crop_views[:, column], minlength=self.count) / counts
                                for column in range(crop_views.shape[1])])


def start_prepared(classifier: Classifier, prepared: list[np.ndarray], executor: Executor) -> Pending:
    """:func:`predict_prepared` begun now and finished by ``result()`` (:meth:`Classifier.start`)."""
    if not prepared:
        return Submitted(executor.submit(np.zeros, 0))
    images, owners = _stacked(prepared)
    return _Aggregated(classifier.start(images, executor), owners, len(prepared))
