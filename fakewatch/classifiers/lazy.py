"""A classifier that loads on first use: a scan that meets only thumbnails never loads the photo
classifier, and start-up pays for none of them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from fakewatch.classifiers.base import Classifier, Pending, Views
from fakewatch.imaging import InputSpec
from fakewatch.registry import ClassifierVersion

log = logging.getLogger(__name__)


class LazyClassifier:
    """A :class:`~fakewatch.classifiers.base.Classifier` whose version is known at once and whose network
    is loaded (by ``load``) the first time anything else is asked of it."""

    def __init__(self, version: ClassifierVersion, load: Callable[[], Classifier]) -> None:
        self.version = version.version
        self._load = load
        self._loaded: Classifier | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Classifier:
        """The classifier itself, loaded now if it was not yet."""
        if self._loaded is not None:
            return self._loaded
        with self._lock:  # decoding threads may ask for the spec at once
            if self._loaded is None:
                self._loaded = self._load()
                log.info("classifier %s loaded", self.version)
            return self._loaded

    @property
    def spec(self) -> InputSpec:
        return self.loaded.spec

    @property
    def threshold(self) -> float:
        return self.loaded.threshold

    @property
    def views(self) -> Views | None:
        return self.loaded.views

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.loaded.predict(images)

    def start(self, images: np.ndarray, executor: Executor) -> Pending:
        return self.loaded.start(images, executor)
