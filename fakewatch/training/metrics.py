"""Classification metrics in plain NumPy, so they can be checked by hand."""

from __future__ import annotations

from typing import Any

import numpy as np

CLASS_NAMES = ("real", "fake")


def confusion(labels: np.ndarray, predicted: np.ndarray) -> list[list[int]]:
    """2x2 confusion matrix, rows = true class (real, fake), columns = predicted class."""
    truth = labels.astype(int)
    guess = predicted.astype(int)
    return [[int(((truth == t) & (guess == g)).sum()) for g in (0, 1)] for t in (0, 1)]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic; ties count half."""
    positives = labels >= 0.5
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score, for plotting."""
    order = np.argsort(-scores, kind="mergesort")
    hits = (labels[order] >= 0.5).astype(np.float64)
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(1 - hits) / max((1 - hits).sum(), 1)])
    return fpr, tpr


def reliability(labels: np.ndarray, p_fake: np.ndarray, bins: int = 15) -> list[dict[str, float]]:
    """Per-bin confidence, accuracy and count for the predicted class (the reliability diagram's data)."""
    predicted = p_fake >= 0.5
    confidence = np.where(predicted, p_fake, 1.0 - p_fake)
    correct = predicted == (labels >= 0.5)
    edges = np.linspace(0.5, 1.0, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high) if low > 0.5 else (confidence >= low) & (confidence <= high)
        if inside.any():
            rows.append({"low": float(low), "high": float(high), "count": int(inside.sum()),
                         "confidence": float(confidence[inside].mean()), "accuracy": float(correct[inside].mean())})
    return rows


def expected_calibration_error(labels: np.ndarray, p_fake: np.ndarray, bins: int = 15) -> float:
    """Count-weighted mean gap between confidence and accuracy over the reliability bins."""
    rows = reliability(labels, p_fake, bins)
    total = sum(row["count"] for row in rows)
    return float(sum(row["count"] * abs(row["confidence"] - row["accuracy"]) for row in rows) / max(total, 1))


def _per_class(matrix: list[list[int]], index: int) -> dict[str, float]:
    true_positive = matrix[index][index]
    predicted = matrix[0][index] + matrix[1][index]
    actual = sum(matrix[index])
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def classification_report(labels: np.ndarray, p_fake: np.ndarray, threshold: float,
                          uncertain_margin: float = 0.0) -> dict[str, Any]:
    """Everything `fakewatch evaluate` reports for one set of calibrated predictions."""
    labels = np.asarray(labels, dtype=np.float64)
    p_fake = np.asarray(p_fake, dtype=np.float64)
    predicted = p_fake >= threshold
    matrix = confusion(labels, predicted)
    per_class = {name: _per_class(matrix, index) for index, name in enumerate(CLASS_NAMES)}
    decided = np.abs(p_fake - threshold) >= uncertain_margin
    return {
        "count": int(len(labels)),
        "threshold": threshold,
        "accuracy": float((predicted == (labels >= 0.5)).mean()) if len(labels) else float("nan"),
        "per_class": per_class,
        "macro_f1": float(np.mean([per_class[name]["f1"] for name in CLASS_NAMES])),
        "precision": per_class["fake"]["precision"],
        "recall": per_class["fake"]["recall"],
        "f1": per_class["fake"]["f1"],
        "roc_auc": roc_auc(labels, p_fake),
        "confusion_matrix": matrix,
        "ece": expected_calibration_error(labels, p_fake),
        "uncertain_margin": uncertain_margin,
        "uncertain_rate": float(1.0 - decided.mean()) if len(labels) else 0.0,
        "accuracy_decided": (float((predicted[decided] == (labels[decided] >= 0.5)).mean())
                             if decided.any() else float("nan")),
    }
