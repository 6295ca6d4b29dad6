"""The photo classifier's low-level view: a small network trained from scratch on a fixed high-pass input,
the neighbouring-pixel residual (NPR, Tan et al., CVPR 2024), scored by a shallow, fully convolutional patch
scorer whose patch logits are averaged (the LaDeDa idea, Cavia et al., 2024). It reads local pixel
statistics rather than content, at native resolution, and is cheap on a CPU.

NPR: every pixel minus the top-left pixel of its 2x2 cell, which exposes the up-sampling traces generators
leave. Trained on random 64 px patches of the (augmented) training crops; applied to a whole crop, it
averages the scores of every patch position. :func:`branch` builds the same layers on any input tensor,
so the fused photo network (:mod:`fakewatch.training.fusion`) carries this view beside the backbone.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from fakewatch.classifiers.layers import NeighbourResidual

PATCH = 64
PREFIX = "residual_"


def branch(inputs, width: int = 16, prefix: str = PREFIX):  # type: ignore[no-untyped-def]
    """The residual view's layers on ``inputs`` (float 0..255 RGB): the logit of the mean patch score."""
    x = NeighbourResidual(name=f"{prefix}npr")(inputs)
    for index, (filters, stride) in enumerate(((width, 1), (width * 2, 2), (width * 4, 2), (width * 4, 1))):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                          name=f"{prefix}conv_{index}")(x)
        x = layers.BatchNormalization(name=f"{prefix}bn_{index}")(x)
        x = layers.ReLU(name=f"{prefix}relu_{index}")(x)
    patch_logits = layers.Conv2D(1, 1, name=f"{prefix}patch_logit")(x)
    return layers.GlobalAveragePooling2D(name=f"{prefix}logit")(patch_logits)


def build(size: int | None = None, width: int = 16) -> keras.Model:
    """Image (float 0..255, any even size when ``size`` is None) -> logit of the mean patch score."""
    inputs = keras.Input((size, size, 3), name="image")
    return keras.Model(inputs, branch(inputs, width), name="npr_patches")


def width_of(model: keras.Model) -> int:
    """The ``width`` a residual network was built with."""
    return int(model.get_layer(f"{PREFIX}conv_0").filters)


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


def train(crops: np.ndarray, labels: np.ndarray, width: int, epochs: int, seed: int, per_crop: int = 2,
          learning_rate: float = 2e-3) -> tuple[keras.Model, list[float]]:
    """A residual network trained on ``per_crop`` random patches of every training crop (label per crop)."""
    patches, owners = random_patches(crops, PATCH, per_crop, seed)
    model = build(PATCH, width)
    losses = fit(model, patches, labels[owners], epochs, learning_rate, seed)
    return model, losses


def crop_logits(model: keras.Model, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The residual view's logit for every whole crop (all patch positions averaged), float64."""
    if len(crops) == 0:
        return np.zeros(0)
    scorer = build(crops.shape[1], width_of(model))
    scorer.set_weights(model.get_weights())
    parts = [scorer.predict(crops[start:start + 1024].astype(np.float32), batch_size=batch_size, verbose=0)
             for start in range(0, len(crops), 1024)]
    return np.concatenate(parts).reshape(-1).astype(np.float64)
