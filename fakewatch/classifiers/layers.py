"""Every custom Keras layer a saved classifier network holds, registered for loading.

A ``.keras`` file names each of these layers by its registered name (``fakewatch>LiteScale``...): the
package and class names below must never change, or the shipped classifiers and every published version
stop loading. Training builds its networks from these layers; the Keras runtime imports this module so a
saved network loads without importing :mod:`fakewatch.training`. Importing this module imports Keras.
"""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="fakewatch")
class CaffePreprocess(layers.Layer):
    """RGB 0..255 -> BGR minus ImageNet means: what keras.applications.ResNet50 weights expect."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        bgr = keras.ops.flip(inputs, axis=-1)
        return bgr - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=inputs.dtype)


@keras.saving.register_keras_serializable(package="fakewatch")
class LiteScale(layers.Layer):
    """RGB 0..255 -> (x - 127) / 128: the input scaling EfficientNet-Lite was trained with."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        return (inputs - 127.0) / 128.0


@keras.saving.register_keras_serializable(package="fakewatch")
class NeighbourResidual(layers.Layer):
    """x - nearest-neighbour up(down(x, 2)), on 0..255 input scaled to -1..1; sides must be even: the
    neighbouring-pixel residual (NPR) of the photo classifier's residual view."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        x = inputs / 127.5 - 1.0
        anchors = x[:, ::2, ::2, :]
        upsampled = keras.ops.repeat(keras.ops.repeat(anchors, 2, axis=1), 2, axis=2)
        return x - upsampled
