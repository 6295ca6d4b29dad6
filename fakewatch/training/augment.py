"""Training-time augmentation, applied to training data only.

Geometric (flip, small shift), photometric (brightness, contrast) and robustness augmentation: random
JPEG re-compression and mild blur by down-and-up resizing, because images in real archives have been
re-encoded and resized, and a detector that only knows pristine files collapses on them.
"""

from __future__ import annotations

import tensorflow as tf

JPEG_PROBABILITY = 0.25
JPEG_QUALITY = (60, 95)
RESIZE_PROBABILITY = 0.15
RESIZE_SCALE = (0.6, 0.9)


def _maybe(probability: float, apply, image):  # type: ignore[no-untyped-def]
    return tf.cond(tf.random.uniform(()) < probability, lambda: apply(image), lambda: image)


def _shift(image: tf.Tensor, size: int) -> tf.Tensor:
    pad = max(1, size // 16)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    return tf.image.random_crop(padded, (size, size, 3))


def _photometric(image: tf.Tensor) -> tf.Tensor:
    pixels = tf.cast(image, tf.float32)
    mean = tf.reduce_mean(pixels)
    contrast = tf.random.uniform((), 0.92, 1.08)
    brightness = tf.random.uniform((), -8.0, 8.0)
    pixels = (pixels - mean) * contrast + mean + brightness
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)


def _jpeg(image: tf.Tensor) -> tf.Tensor:
    quality = tf.random.uniform((), JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, dtype=tf.int32)
    return tf.image.adjust_jpeg_quality(image, quality)


def _soften(image: tf.Tensor, size: int) -> tf.Tensor:
    scale = tf.random.uniform((), *RESIZE_SCALE)
    small = tf.cast(tf.round(scale * size), tf.int32)
    down = tf.image.resize(image, (small, small), method="area")
    up = tf.image.resize(down, (size, size), method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(up), 0, 255), tf.uint8)


def augment(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One uint8 RGB image in, one augmented uint8 RGB image out (same size)."""
    size = int(image.shape[0])
    image = tf.image.random_flip_left_right(image)
    image = _shift(image, size)
    image = _photometric(image)
    image = _maybe(RESIZE_PROBABILITY, lambda x: _soften(x, size), image)
    image = _maybe(JPEG_PROBABILITY, _jpeg, image)
    image.set_shape((size, size, 3))
    return image, label
