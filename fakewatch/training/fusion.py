"""Two views of a photo fused into one logit: the fine-tuned backbone (what the image shows) and the
residual patch network (local pixel statistics, :mod:`fakewatch.training.npr`).

The fusion is a logistic regression over the two views' image logits (each the mean of its crops' logits),
fitted on validation images, so it is calibrated where it was fitted. Because it is linear, the mean of the
fused crop logits equals the fusion of the mean view logits: the scanner's aggregation over crops (mean
logit, then the temperature) needs no change.

:func:`fused_network` lays both views and the fusion out as one flat Keras network whose last layer is
``logit``, so the ONNX export, its check and both runtimes treat it as any other photo classifier. The
backbone's own logit layer is called ``semantic_logit`` there, the residual view's ``residual_logit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fakewatch.training import npr

SEMANTIC_LOGIT = "semantic_logit"
VIEWS = ("semantic", "residual")


@dataclass(frozen=True)
class Fusion:
    """fused logit = semantic * weights[0] + residual * weights[1] + bias."""

    weights: tuple[float, float]
    bias: float

    def apply(self, views: np.ndarray) -> np.ndarray:
        return np.asarray(views, np.float64) @ np.array(self.weights) + self.bias

    def to_dict(self) -> dict[str, float]:
        return {"semantic_weight": self.weights[0], "residual_weight": self.weights[1], "bias": self.bias}


def fit_fusion(views: np.ndarray, labels: np.ndarray, l2: float = 1e-2, steps: int = 50) -> Fusion:
    """Logistic regression (Newton's method, a small L2 penalty on the weights) of ``labels`` on the N x 2
    view logits, with balanced class weights so that neither label's size sets the bias."""
    views = np.asarray(views, np.float64)
    labels = np.asarray(labels, np.float64)
    if views.ndim != 2 or views.shape[1] != 2 or len(views) != len(labels):
        raise ValueError("fit_fusion needs N x 2 view logits and N labels")
    if labels.min() == labels.max():
        raise ValueError("fitting the fusion needs validation images of both labels")
    fake = labels.sum()
    sample_weight = np.where(labels == 1, len(labels) / (2 * fake), len(labels) / (2 * (len(labels) - fake)))
    design = np.column_stack([views, np.ones(len(views))])
    penalty = np.diag([l2, l2, 0.0]) * len(views)
    theta = np.zeros(3)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -60, 60)))
        gradient = design.T @ (sample_weight * (p - labels)) + penalty @ theta
        hessian = (design * (sample_weight * p * (1 - p))[:, None]).T @ design + penalty + 1e-9 * np.eye(3)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return Fusion((float(theta[0]), float(theta[1])), float(theta[2]))


def operating_threshold(p_real: np.ndarray, false_positive_rate: float, floor: float = 0.05,
                        ceiling: float = 0.95) -> float:
    """The lowest threshold (on a 0.005 grid in [floor, ceiling]) at which at most ``false_positive_rate``
    of the real validation photos ``p_real`` would be flagged fake."""
    candidates = np.round(np.arange(floor, ceiling + 1e-9, 0.005), 3)
    p_real = np.asarray(p_real, np.float64)
    for candidate in candidates:
        if len(p_real) == 0 or float((p_real >= candidate).mean()) <= false_positive_rate:
            return float(candidate)
    return float(candidates[-1])


def _semantic_graph(variant: str, crop: int, logit_name: str,  # type: ignore[no-untyped-def]
                    backbone_weights: str | Path | None = None):
    """The backbone (ImageNet weights when given, else random), dropout and a dense logit named
    ``logit_name``: (input, logit)."""
    from fakewatch.training import efficientnet_lite

    if backbone_weights is not None:
        backbone = efficientnet_lite.load_backbone(backbone_weights, variant, crop)
    else:
        backbone = efficientnet_lite.build_backbone(variant, crop)
    x = layers.Dropout(0.2, name="dropout")(backbone.output)
    return backbone.input, layers.Dense(1, name=logit_name)(x)


def semantic_network(variant: str, crop: int, backbone_weights: str | Path | None = None) -> keras.Model:
    """The backbone view alone: backbone -> dropout -> ``logit`` -> ``p_fake``; float 0..255 RGB in."""
    image, logit = _semantic_graph(variant, crop, "logit", backbone_weights)
    p_fake = layers.Activation("sigmoid", name="p_fake", dtype="float32")(logit)
    return keras.Model(image, p_fake, name=f"photo_efficientnet_{variant}")


def fused_network(semantic: keras.Model, residual: keras.Model, fusion: Fusion, variant: str,
                  crop: int) -> keras.Model:
    """One flat network: both views on the same crop, their logits fused into ``logit``, then ``p_fake``."""
    image, semantic_logit = _semantic_graph(variant, crop, SEMANTIC_LOGIT)
    residual_logit = npr.branch(image, npr.width_of(residual))
    both = layers.Concatenate(name="views")([semantic_logit, residual_logit])
    logit = layers.Dense(1, name="logit")(both)
    p_fake = layers.Activation("sigmoid", name="p_fake", dtype="float32")(logit)
    model = keras.Model(image, p_fake, name=f"photo_fused_{variant}")
    for layer in semantic.layers:
        if layer.get_weights():
            target = SEMANTIC_LOGIT if layer.name == "logit" else layer.name
            model.get_layer(target).set_weights(layer.get_weights())
    for layer in residual.layers:
        if layer.get_weights():
            model.get_layer(layer.name).set_weights(layer.get_weights())
    model.get_layer("logit").set_weights([np.array(fusion.weights, np.float32).reshape(2, 1),
                                          np.array([fusion.bias], np.float32)])
    return model


def is_fused(model: keras.Model) -> bool:
    return any(layer.name == SEMANTIC_LOGIT for layer in model.layers)


def split_views(fused: keras.Model, variant: str, crop: int) -> tuple[keras.Model, keras.Model]:
    """The two views of a fused network as separate networks (semantic with its ``logit`` layer; the
    residual one at its training patch size), with the fused network's weights."""
    semantic = semantic_network(variant, crop)
    for layer in semantic.layers:
        source = SEMANTIC_LOGIT if layer.name == "logit" else layer.name
        if layer.get_weights():
            layer.set_weights(fused.get_layer(source).get_weights())
    residual = npr.build(npr.PATCH, int(fused.get_layer(f"{npr.PREFIX}conv_0").filters))
    for layer in residual.layers:
        if layer.get_weights():
            layer.set_weights(fused.get_layer(layer.name).get_weights())
    return semantic, residual
