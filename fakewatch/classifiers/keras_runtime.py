"""The trained network at inference time: one compiled TensorFlow function per classifier (never
``model.predict`` per image), with batch normalisation folded into the convolutions at load time.

This is the ``keras`` runtime. Importing this module imports TensorFlow, and registers the custom layers
(:mod:`fakewatch.classifiers.layers`) saved networks need; :func:`fakewatch.classifiers.loading.load`
imports it only when a Keras classifier is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from fakewatch.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fakewatch.classifiers import layers  # noqa: E402, F401  registers the custom layers
from fakewatch.classifiers.base import Pending, Views, calibrated, submit  # noqa: E402
from fakewatch.errors import IncompatibleClassifier  # noqa: E402
from fakewatch.registry import ClassifierVersion  # noqa: E402


def logits_function(model: Any, size: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a uint8 RGB batch to the network's raw logits (its ``logit`` layer), as float64.

    With ``size`` the function is traced once for that input size (fast repeated calls); without, it runs
    the network eagerly (for one-off use, e.g. calibration right after training).
    """
    logits_model = keras.Model(model.inputs, model.get_layer("logit").output)
    if size is None:
        def eager(batch: np.ndarray) -> np.ndarray:
            return np.asarray(logits_model(tf.cast(batch, tf.float32), training=False)).reshape(-1)
        return eager
    traced = tf.function(lambda batch: logits_model(tf.cast(batch, tf.float32), training=False),
                         input_signature=[tf.TensorSpec((None, size, size, 3), tf.uint8)])
    traced(np.zeros((1, size, size, 3), np.uint8))  # trace now, not mid-scan
    return lambda batch: traced(batch).numpy().reshape(-1)


def batched_logits(function: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of ``images`` computed ``batch_size`` at a time, as one float64 array."""
    if len(images) == 0:
        return np.zeros((0,), dtype=np.float64)
    parts = [function(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float64)


class KerasClassifier:
    """A registry version loaded for inference. It reads only the fused logit, never the views' logits."""

    views: Views | None = None

    def __init__(self, version: ClassifierVersion, batch_size: int = 256) -> None:
        _enable_gpu_memory_growth()
        self.version = version.version
        self.spec = version.spec
        self.threshold = version.threshold
        self.temperature = version.temperature
        self.batch_size = batch_size
        version.check_weights()  # once per process: free when the registry already checked it
        try:
            model = fold_batch_norms(keras.saving.load_model(version.weights, compile=False))
        except (ValueError, OSError, KeyError) as exc:
            raise IncompatibleClassifier(f"{version.path}: cannot load {version.weights.name}: {exc}") from exc
        expected = (None, self.spec.size, self.spec.size, 3)
        if tuple(model.input_shape) != expected:
            raise IncompatibleClassifier(f"{version.path}: network input {model.input_shape} does not match "
                                         f"the card's input spec {expected}")
        self._logits = logits_function(model, self.spec.size)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Raw network logits (before temperature), computed in batches of ``batch_size``."""
        return batched_logits(self._logits, images, self.batch_size)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return calibrated(self.logits(images), self.temperature)

    def start(self, images: np.ndarray, executor: Executor) -> Pending:
        return submit(executor, self.predict, images)


def fold_batch_norms(model: Any) -> Any:
    """The same network for inference with every Conv2D -> BatchNormalization pair merged into one
    convolution with a bias: identical outputs (to float rounding), fewer passes over memory.

    Only a batch normalization whose sole input is a convolution used by nothing else is folded; any
    other layer is copied as it is. Returns ``model`` itself when there is nothing to fold.
    """
    pairs = {}  # convolution name -> its batch normalization
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        parents = layer._inbound_nodes[0].parent_nodes
        conv = parents[0].operation if len(parents) == 1 else None
        if (isinstance(conv, keras.layers.Conv2D) and len(conv._outbound_nodes) == 1
                and conv.get_config().get("data_format", "channels_last") == "channels_last"
                and layer.axis in (-1, 3)):
            pairs[conv.name] = layer
    if not pairs:
        return model
    folded_norms = {norm.name for norm in pairs.values()}

    class Folded(keras.layers.Layer):
        """Where a folded batch normalization was: passes its input through."""

        def call(self, inputs, training=None, mask=None):  # type: ignore[no-untyped-def]
            return inputs

    def clone(layer: Any) -> Any:
        if layer.name in folded_norms:
            return Folded(name=layer.name)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in folded.layers:
        original = model.get_layer(layer.name)
        if layer.name in pairs:
            norm = pairs[layer.name]
            weights = original.get_weights()
            kernel, bias = weights[0], weights[1] if len(weights) > 1 else 0.0
            gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in norm.get_weights())
            scale = gamma / np.sqrt(variance + norm.epsilon)
            layer.set_weights([(kernel * scale).astype(kernel.dtype),
                               ((bias - mean) * scale + beta).astype(kernel.dtype)])
        elif original.get_weights() and layer.name not in folded_norms:
            layer.set_weights(original.get_weights())
    return folded


def _enable_gpu_memory_growth() -> None:
    """Let several worker processes share one GPU instead of the first taking all its memory."""
    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:
            pass  # already initialised in this process; growth was set earlier
