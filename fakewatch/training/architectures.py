"""Classifier networks. Every one takes float32 RGB in 0..255 and ends in a ``logit`` layer followed by a
``p_fake`` sigmoid, so calibration can read logits and Keras users still see probabilities.

    cnn      the classic small CNN baseline: Conv32-Pool-Dropout, Conv64-Pool-Dropout, Dense128-Dropout
    resnet   sized for the input: a CIFAR-style residual network below 224 px,
             keras.applications.ResNet50 at 224 px and up (optionally from a local ImageNet weights file)
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
from keras import layers

from fakewatch.classifiers.layers import CaffePreprocess
from fakewatch.imaging import InputSpec
from fakewatch.training.options import ARCHITECTURES, LARGE_INPUT, STEMS, parse_blocks

log = logging.getLogger(__name__)


def _head(features, name: str) -> keras.Model:  # type: ignore[no-untyped-def]
    logit = layers.Dense(1, name="logit")(features)
    return layers.Activation("sigmoid", name="p_fake", dtype="float32")(logit)


def build_cnn(spec: InputSpec) -> keras.Model:
    inputs = keras.Input((spec.size, spec.size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, _head(x, "cnn"), name="cnn")


def _conv_bn(x, filters: int, strides: int = 1, relu: bool = True, kernel: int = 3):  # type: ignore[no-untyped-def]
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if relu else x


def _residual(x, filters: int, strides: int):  # type: ignore[no-untyped-def]
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    y = _conv_bn(x, filters, strides)
    y = _conv_bn(y, filters, relu=False)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def build_small_resnet(spec: InputSpec, width: int = 32, blocks: int | str | tuple[int, ...] = (2, 1, 1),
                       stem: str = "patch") -> keras.Model:
    """CIFAR-style ResNet: a stem, then three stages (width, 2x, 4x channels) of residual blocks.

    ``stem="patch"`` folds each 2x2 pixel patch into channels with a stride-2 2x2 convolution: it keeps
    every pixel's value (generator fingerprints live in the highest frequencies) while the rest of the
    network runs at half resolution, about twice as fast on a CPU as ``stem="full"`` (a 3x3 convolution
    at full resolution).
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
    per_stage = parse_blocks(blocks)
    inputs = keras.Input((spec.size, spec.size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = _conv_bn(x, width, strides=2, kernel=2) if stem == "patch" else _conv_bn(x, width)
    for stage, (filters, count) in enumerate(zip((width, 2 * width, 4 * width), per_stage, strict=True)):
        for block in range(count):
            x = _residual(x, filters, strides=2 if stage > 0 and block == 0 else 1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    name = f"resnet_{stem}_w{width}_b{''.join(map(str, per_stage))}"
    return keras.Model(inputs, _head(x, "resnet"), name=name)


def build_resnet50(spec: InputSpec, weights: str | None) -> keras.Model:
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"weights file {weights} does not exist")
    if weights is None:
        log.warning("no --weights file given: ResNet50 trains from scratch (nothing is downloaded)")
    inputs = keras.Input((spec.size, spec.size, 3), name="image")
    base = keras.applications.ResNet50(include_top=False, weights=weights, pooling="avg",
                                       input_shape=(spec.size, spec.size, 3))
    x = base(CaffePreprocess()(inputs))
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(x, "resnet50"), name="resnet50")


def build(arch: str, spec: InputSpec, *, weights: str | None = None, width: int = 32,
          blocks: int | str | tuple[int, ...] = (2, 1, 1), stem: str = "patch") -> keras.Model:
    """Build an untrained classifier network for ``spec``."""
    if arch == "cnn":
        if weights:
            raise ValueError("--weights applies to the resnet architecture at 224 px and up")
        return build_cnn(spec)
    if arch == "resnet":
        if spec.size >= LARGE_INPUT:
            return build_resnet50(spec, weights)
        if weights:
            raise ValueError(f"--weights needs an input size of {LARGE_INPUT} or more (ImageNet ResNet50)")
        return build_small_resnet(spec, width, blocks, stem)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
