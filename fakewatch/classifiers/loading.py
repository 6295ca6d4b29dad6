"""Turning a registry version into a :class:`~fakewatch.classifiers.base.Classifier`, by the ``engine`` its
card names and the ``runtime`` setting:

    keras       a trained network: run from its ONNX export by :mod:`~fakewatch.classifiers.onnx_runtime`
                (runtime ``lite``, no TensorFlow), or by :mod:`~fakewatch.classifiers.keras_runtime` (runtime
                ``keras``, and for versions without an export, with a warning)
    pixel-hash  :class:`~fakewatch.classifiers.pixel_hash.PixelHashClassifier`, for tests and smoke tests

This module imports neither TensorFlow nor Keras; the runtime a version needs is imported when it loads.
"""

from __future__ import annotations

import logging

from fakewatch.classifiers.base import Classifier
from fakewatch.classifiers.pixel_hash import PixelHashClassifier
from fakewatch.registry import ClassifierVersion

log = logging.getLogger(__name__)


def load(version: ClassifierVersion, batch_size: int = 256, runtime: str = "lite", threads: int = 0) -> Classifier:
    """The classifier for a registry version, by its card's engine and the ``runtime`` setting; ``threads``
    is the lite runtime's thread count (0: one per core)."""
    if version.engine == "pixel-hash":
        return PixelHashClassifier(version)
    if runtime == "lite" and version.export is not None:
        from fakewatch.classifiers.onnx_runtime import OnnxClassifier

        return OnnxClassifier(version, batch_size, threads)
    if runtime == "lite":
        log.warning("classifier %s has no ONNX export, so it runs through TensorFlow (slower to start); "
                    "add one with `fakewatch classifiers export %s`", version.version, version.version)
    from fakewatch.classifiers.keras_runtime import KerasClassifier

    return KerasClassifier(version, batch_size)
