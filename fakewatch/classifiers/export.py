"""Export a Keras classifier version to ONNX, checked against the network it came from.

The export maps a uint8 RGB batch (any batch size) to the network's raw logits, with batch normalisation
folded in, in float32: no quantisation. ONNX was chosen over LiteRT after measuring both on the shipped
classifier (`python bench/classifier_speed.py`): ONNX Runtime ran it about 40% faster on the CPU, loads in
0.2 s, and has a CUDA build for GPU workers. Before it is recorded in the card, the export and the Keras runtime
classify a check batch (``check_batch.npy`` beside the weights: held-out images saved at training time, or
for older versions a fixed synthetic batch) and the largest difference in ``p_fake`` must stay within
:data:`MAX_DELTA_P`; otherwise nothing is recorded and :class:`ExportMismatch` says by how much it missed.

Imports TensorFlow: only training and `fakewatch classifiers export` use this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fakewatch.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from fakewatch import registry  # noqa: E402
from fakewatch.classifiers.keras_runtime import KerasClassifier, fold_batch_norms  # noqa: E402
from fakewatch.classifiers.onnx_runtime import OnnxClassifier  # noqa: E402
from fakewatch.errors import ClassifierError  # noqa: E402

log = logging.getLogger(__name__)

EXPORT_FILE = "classifier.onnx"
OPSET = 17
CHECK_FILE = "check_batch.npy"
MAX_DELTA_P = 1e-4
CHECK_IMAGES = 256


class ExportMismatch(ClassifierError):
    """The export's p_fake differs from the Keras network's by more than MAX_DELTA_P."""


def onnx_model(weights: Path, size: int) -> bytes:
    """The network in ``weights`` as an ONNX model: uint8 N x size x size x 3 in, N logits out; a network
    with two views (:mod:`fakewatch.training.fusion`) has a second output, N x 2 view logits (backbone,
    residual), read by the runtime to see where the views disagree."""
    network = fold_batch_norms(keras.saving.load_model(weights, compile=False))
    names = {layer.name for layer in network.layers}
    views = "views" in names
    outputs = [network.get_layer("logit").output] + ([network.get_layer("views").output] if views else [])
    logits = keras.Model(network.inputs, outputs)

    signature = [tf.TensorSpec((None, size, size, 3), tf.uint8, name="image")]

    @tf.function(input_signature=signature)
    def serve(batch: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        out = logits(tf.cast(batch, tf.float32), training=False)
        if views:
            return tf.reshape(out[0], (-1,)), tf.identity(out[1], name="views")
        return tf.reshape(out, (-1,))

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET)
    return bytes(proto.SerializeToString())


def synthetic_check_batch(size: int, count: int = CHECK_IMAGES) -> np.ndarray:
    """A fixed batch for versions that stored none: half smooth gradients, half noise (hard on rounding)."""
    rng = np.random.default_rng(20261202)
    ramp = np.linspace(0.0, 1.0, size)
    smooth = [np.clip(rng.uniform(30, 220, 3) + rng.uniform(-60, 60, 3) * (ramp[:, None, None] + ramp[None, :, None])
                      / 2, 0, 255) for _ in range(count // 2)]
    noise = rng.integers(0, 256, (count - count // 2, size, size, 3))
    return np.concatenate([np.stack(smooth), noise]).astype(np.uint8)


def save_check_batch(directory: Path, images: np.ndarray) -> None:
    """Keep up to CHECK_IMAGES held-out images beside the weights, for checking exports later."""
    np.save(directory / CHECK_FILE, np.ascontiguousarray(images[:CHECK_IMAGES], dtype=np.uint8))


def check_batch(version: registry.ClassifierVersion) -> tuple[np.ndarray, str]:
    stored = version.path / CHECK_FILE
    if stored.is_file():
        images = np.load(stored)
        return images, f"the images stored in {CHECK_FILE}"
    return synthetic_check_batch(version.spec.size), "fixed synthetic batch (no stored check batch)"


def export_version(directory: Path, batch_size: int = 256) -> dict[str, Any]:
    """Write ``classifier.onnx`` for the Keras version in ``directory``, check it, record it in the card."""
    version = registry.read_version(directory)
    if version.engine != "keras":
        raise ClassifierError(f"classifier {version.version} runs on the {version.engine} engine; only Keras "
                              f"networks are exported")
    target = directory / EXPORT_FILE
    target.write_bytes(onnx_model(version.weights, version.spec.size))
    images, source = check_batch(version)
    record = {"format": "onnx", "file": EXPORT_FILE, "opset": OPSET, "sha256": registry.file_sha256(target),
              "quantization": "none (float32)", "check_images": int(len(images)), "check_source": source,
              "converter": f"tf2onnx {tf2onnx.__version__}, TensorFlow {tf.__version__}"}
    candidate = registry.ClassifierVersion(directory, {**version.card, "export": record}, version.builtin)
    expected = KerasClassifier(version, batch_size).predict(images)
    exported = OnnxClassifier(candidate, batch_size).predict(images)
    delta = float(np.max(np.abs(expected - exported))) if len(images) else 0.0
    if not delta <= MAX_DELTA_P:
        target.unlink()
        raise ExportMismatch(f"classifier {version.version}: the export's p_fake differs from the Keras "
                             f"network's by up to {delta:.2e} on {len(images)} check images (limit "
                             f"{MAX_DELTA_P:.0e}); not exported")
    record["max_abs_delta_p_fake"] = delta
    registry.write_card(directory, {**version.card, "export": record})
    log.info("exported %s: max |delta p_fake| %.2e on %d check images", version.version, delta, len(images))
    return record
