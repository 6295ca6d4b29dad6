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
            model = fold_batch_norms(keras.saving.load_model(version.weights, compile=False))
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


def fold_batch_norms(model: Any) -> Any:
    """The same network for inference with every Conv2D -> BatchNormalization pair merged into one
    convolution with a bias: identical outputs (to float rounding), fewer passes over memory.

    Only a batch normalization whose sole input is a convolution used by nothing else is folded; any
    other layer is copied as it is. Returns ``model`` itself when there is nothing to fold.
    """
    import keras

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


def _enable_gpu_memory_growth(tf: Any) -> None:
    """Let several worker processes share one GPU instead of the first taking all its memory."""
    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:
            pass  # already initialised in this process; growth was set earlier


def load(version: ClassifierVersion, batch_size: int = 256) -> Classifier:
    return KerasClassifier(version, batch_size)
