"""A small network trained from scratch on a fixed high-pass input: the neighbouring-pixel residual (NPR,
Tan et al., CVPR 2024) scored by a shallow, fully convolutional patch scorer whose patch logits are averaged
(the LaDeDa idea, 2024). It reads any resolution without resizing and is cheap on a CPU.

NPR: every pixel minus the top-left pixel of its 2x2 cell, which exposes the up-sampling traces generators
leave. Trained on random 64 px patches of the training crops; applied to whole crops, it averages the
scores of every patch position.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="fakewatch")
class NeighbourResidual(layers.Layer):
    """x - nearest-neighbour up(down(x, 2)), on 0..255 input scaled to -1..1; sides must be even."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        x = inputs / 127.5 - 1.0
        anchors = x[:, ::2, ::2, :]
        upsampled = keras.ops.repeat(keras.ops.repeat(anchors, 2, axis=1), 2, axis=2)
        return x - upsampled


def build(size: int | None = None, width: int = 16) -> keras.Model:
    """Image (float 0..255, any even size when ``size`` is None) -> logit of the mean patch score."""
    inputs = keras.Input((size, size, 3), name="image")
    x = NeighbourResidual(name="npr")(inputs)
    for filters, stride in ((width, 1), (width * 2, 2), (width * 4, 2), (width * 4, 1)):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    patch_logits = layers.Conv2D(1, 1, name="patch_logit")(x)
    logit = layers.GlobalAveragePooling2D(name="logit")(patch_logits)
    return keras.Model(inputs, logit, name="npr_patches")


def random_patches(crops: np.ndarray, size: int, per_crop: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_crop`` random ``size`` px patches of each crop (even offsets keep the 2x2 grid) and their crop."""
    rng = np.random.default_rng(seed)
    span = crops.shape[1] - size
    patches, owners = [], []
    for index, crop in enumerate(crops):
        for _ in range(per_crop):
            top, left = (int(rng.integers(0, span // 2 + 1)) * 2 for _ in range(2))
            patches.append(crop[top:top + size, left:left + size])
            owners.append(index)
    return np.stack(patches), np.array(owners)


def fit(model: keras.Model, patches: np.ndarray, labels: np.ndarray, epochs: int, learning_rate: float,
        seed: int, batch_size: int = 128) -> list[float]:
    keras.utils.set_random_seed(seed)
    fake = float(labels.sum())
    weights = np.where(labels == 1, len(labels) / (2 * fake), len(labels) / (2 * (len(labels) - fake)))
    steps = epochs * -(-len(labels) // batch_size)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(patches.astype(np.float32), labels.astype(np.float32), sample_weight=weights,
                        batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return [float(value) for value in history.history["loss"]]
