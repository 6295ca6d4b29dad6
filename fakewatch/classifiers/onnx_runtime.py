"""A trained network run from its ONNX export by ONNX Runtime: no TensorFlow, a fraction of a second to load.

This is the ``lite`` runtime. The export (written by :mod:`fakewatch.classifiers.export` when a version is published,
or by `fakewatch classifiers export`) maps a uint8 RGB batch to the network's raw logits; the card's
temperature turns them into ``p_fake`` exactly as the Keras runtime does. At publish time the two were
checked to agree within 1e-4. ONNX Runtime uses a CUDA GPU when its GPU build is installed.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fakewatch.classifiers.base import Views, calibrated
from fakewatch.config import cores
from fakewatch.errors import IncompatibleClassifier
from fakewatch.registry import ClassifierVersion

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


LANE_SLICE = 128  # images per call on one lane: small enough that lanes share a batch's work evenly


@dataclass
class Later:
    """A batch on its way through the lanes (or already done: ``values``)."""

    parts: list[Future[np.ndarray]]
    values: np.ndarray | None
    temperature: float | None  # None: hand back raw logits

    def _all(self) -> np.ndarray:
        if self.values is None:
            self.values = np.concatenate([part.result() for part in self.parts]).astype(np.float64)
        return self.values

    def result(self) -> np.ndarray:
        values = self._all()
        logits = values[:, 0] if values.ndim == 2 else values
        return logits if self.temperature is None else calibrated(logits, self.temperature)

    def views(self) -> np.ndarray | None:
        """N x 2 raw logits of the two views (backbone, residual) when the network has them, else None."""
        values = self._all()
        return values[:, 1:] if values.ndim == 2 else None


class OnnxClassifier:
    """A registry version's ONNX export, loaded for inference."""

    def __init__(self, version: ClassifierVersion, batch_size: int = 256, threads: int = 0) -> None:
        import onnxruntime

        path = version.export_file()  # present and matching its sha256
        self.version = version.version
        self.spec = version.spec
        self.threshold = version.threshold
        self.temperature = version.temperature
        self.batch_size = batch_size
        available = onnxruntime.get_available_providers()
        providers = [name for name in PREFERRED_PROVIDERS if name in available]
        # On a CPU, ``threads`` (0: one per core) single-threaded lanes each run a slice of the batch: no
        # thread waits for another's share at every layer, and a lane whose core is busy decoding does
        # not hold the others up. A GPU takes the batch whole.
        self.lanes = 1 if providers[0] != "CPUExecutionProvider" else threads or cores()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the runtime's notices are not the user's business
        options.intra_op_num_threads = 1 if self.lanes > 1 else threads
        # idle threads sleep instead of spinning: the spinning would take the cores from decoding, the database
        # and other worker processes on the same machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ONNX Runtime raises its own exception types for unreadable models
            raise IncompatibleClassifier(f"classifier {self.version}: cannot load its export {path.name}: "
                                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        image = self._session.get_inputs()[0]
        self._input = image.name
        expected = [self.spec.size, self.spec.size, 3]
        if list(image.shape[1:]) != expected or image.type != "tensor(uint8)":
            raise IncompatibleClassifier(f"classifier {self.version}: export {path.name} takes {image.shape[1:]} "
                                         f"{image.type}, but the card's input spec is {expected} uint8")
        self.has_views = len(self._session.get_outputs()) > 1  # a fused network also gives its views' logits
        self.views = Views.from_card(version.card) if self.has_views else None
        self.provider = self._session.get_providers()[0]
        self._lanes: ThreadPoolExecutor | None = None  # started on the first batch that needs two lanes

    def _run(self, images: np.ndarray) -> np.ndarray:
        """Logits (N), or with views N x 3: fused logit, backbone view, residual view."""
        outputs = self._session.run(None, {self._input: np.ascontiguousarray(images, dtype=np.uint8)})
        if self.has_views:
            return np.column_stack([outputs[0].reshape(-1), outputs[1].reshape(len(images), -1)])
        return outputs[0].reshape(-1)

    def _slices(self, images: np.ndarray) -> list[np.ndarray]:
        step = min(self.batch_size, LANE_SLICE, -(-len(images) // self.lanes))
        return [images[start:start + step] for start in range(0, len(images), step)]

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Raw network logits, in slices of at most ``batch_size`` spread over the lanes."""
        return self._later(images, None).result()

    def _later(self, images: np.ndarray, temperature: float | None) -> Later:
        if len(images) == 0:
            return Later([], np.zeros((0, 3) if self.has_views else (0,), dtype=np.float64), temperature)
        if self.lanes == 1:
            values = np.concatenate([self._run(images[start:start + self.batch_size])
                                     for start in range(0, len(images), self.batch_size)]).astype(np.float64)
            return Later([], values, temperature)
        if self._lanes is None:
            self._lanes = ThreadPoolExecutor(self.lanes, thread_name_prefix="lane")
        return Later([self._lanes.submit(self._run, part) for part in self._slices(images)], None, temperature)

    def start(self, images: np.ndarray, executor: Executor | None = None, calibrate: bool = True) -> Later:
        """Queue ``images`` on the lanes and return at once; ``result()`` waits for p_fake (or logits). Work
        queued by several calls runs back to back, so a lane never waits for another between batches. The
        lanes are this classifier's own: ``executor`` is not used."""
        return self._later(images, self.temperature if calibrate else None)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return calibrated(self.logits(images), self.temperature)
