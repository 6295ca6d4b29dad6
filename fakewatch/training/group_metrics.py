"""Metrics per group (generator or source of real photos) beside the totals.

For a group of fakes, ROC-AUC ranks its images against every real image evaluated with it, and the miss
rate is the share called ``real``; for a group of real photos, ROC-AUC ranks it against every fake and the
false-positive rate is the share flagged ``fake``. Totals use balanced accuracy (mean of the two classes'
recall), so a large class cannot hide a weak one. ``uncertain`` answers count as neither right nor wrong in
the decided accuracy, and as not flagged in the false-positive rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from fakewatch.training.metrics import expected_calibration_error, roc_auc


class Grouped(Protocol):
    @property
    def label(self) -> int: ...

    @property
    def group(self) -> str: ...


def _labels(p_fake: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """1 fake, 0 real, -1 uncertain: the decision :func:`fakewatch.verdicts.decide` makes."""
    decided = np.where(p_fake >= threshold, 1, 0)
    return np.where(np.abs(p_fake - threshold) < margin, -1, decided)


def balanced_threshold(p_fake: np.ndarray, labels: np.ndarray) -> float:
    """The threshold in [0.05, 0.95] with the best balanced accuracy; ties go to the one nearest 0.5."""
    candidates = np.round(np.arange(0.05, 0.9501, 0.005), 3)
    fake = labels >= 0.5
    if fake.all() or not fake.any():
        raise ValueError("choosing a threshold needs validation images of both labels")
    scores = np.array([((p_fake[fake] >= t).mean() + (p_fake[~fake] < t).mean()) / 2 for t in candidates])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def group_report(samples: Sequence[Grouped], p_fake: np.ndarray, threshold: float,
                 margin: float) -> dict[str, Any]:
    """Totals and one row per group for calibrated ``p_fake`` of ``samples``."""
    labels = np.array([sample.label for sample in samples], np.float64)
    decided = _labels(p_fake, threshold, margin)
    hard = (p_fake >= threshold).astype(int)
    fake = labels == 1
    totals: dict[str, Any] = {"count": len(samples), "real": int((~fake).sum()), "fake": int(fake.sum()),
                              "threshold": threshold, "uncertain_margin": margin}
    if fake.any() and (~fake).any():
        totals["balanced_accuracy"] = float(((hard[fake] == 1).mean() + (hard[~fake] == 0).mean()) / 2)
        totals["roc_auc"] = roc_auc(labels, p_fake)
    totals["accuracy"] = float((hard == labels).mean())
    totals["ece"] = expected_calibration_error(labels, p_fake)
    totals["uncertain_rate"] = float((decided == -1).mean())
    if (~fake).any():
        totals["false_positive_rate"] = float((decided[~fake] == 1).mean())
    members: dict[str, list[int]] = defaultdict(list)
    for position, sample in enumerate(samples):
        members[sample.group].append(position)
    groups = {}
    for group in sorted(members):
        index = np.array(members[group])
        is_fake = bool(labels[index[0]] == 1)
        others = np.flatnonzero(fake != is_fake)
        row: dict[str, Any] = {"label": "fake" if is_fake else "real", "count": len(index),
                               "accuracy": float((hard[index] == labels[index]).mean()),
                               "uncertain_rate": float((decided[index] == -1).mean())}
        if is_fake:
            row["miss_rate"] = float((decided[index] == 0).mean())
        else:
            row["false_positive_rate"] = float((decided[index] == 1).mean())
        if len(others):
            both = np.concatenate([index, others])
            row["roc_auc"] = roc_auc(labels[both], p_fake[both])
        groups[group] = row
    return {"totals": totals, "groups": groups}
