"""The fusion of the photo classifier's two views and its operating point, on synthetic logits."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras", exc_type=ImportError)  # also skips where keras is blocked

from fakewatch.training.fusion import fit_fusion, operating_threshold  # noqa: E402
from fakewatch.training.metrics import roc_auc  # noqa: E402


def _views(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two views that each see half the fakes: fakes of kind A are loud in view 0, kind B in view 1."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 2).astype(float)
    kind_b = rng.random(count) < 0.5
    views = rng.normal(0, 1, (count, 2))
    views[(labels == 1) & ~kind_b, 0] += 3
    views[(labels == 1) & kind_b, 1] += 3
    return views, labels


def test_the_fusion_ranks_better_than_either_view_when_they_fail_on_different_images() -> None:
    views, labels = _views(2000, 1)
    fusion = fit_fusion(views, labels)
    test_views, test_labels = _views(2000, 2)
    fused = roc_auc(test_labels, fusion.apply(test_views))
    assert fused > max(roc_auc(test_labels, test_views[:, 0]), roc_auc(test_labels, test_views[:, 1])) + 0.03
    assert fusion.weights[0] > 0 and fusion.weights[1] > 0


def test_a_view_that_carries_nothing_gets_little_weight() -> None:
    rng = np.random.default_rng(3)
    labels = (np.arange(3000) % 2).astype(float)
    views = np.column_stack([labels * 4 + rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)])
    fusion = fit_fusion(views, labels)
    assert abs(fusion.weights[1]) < 0.1 * fusion.weights[0]


def test_fit_fusion_refuses_one_label() -> None:
    with pytest.raises(ValueError, match="both labels"):
        fit_fusion(np.zeros((4, 2)), np.zeros(4))


def test_the_operating_threshold_flags_at_most_the_target_share_of_real_photos() -> None:
    p_real = np.random.default_rng(4).beta(2, 5, 1000)
    threshold = operating_threshold(p_real, 0.05)
    assert (p_real >= threshold).mean() <= 0.05
    assert (p_real >= threshold - 0.005).mean() > 0.05  # the lowest such threshold on the grid

