"""Temperature scaling and threshold choice, fitted on the validation split.

Temperature T divides the network's logit so that sigmoid(logit / T) is a calibrated probability
(Guo et al., 2017). The decision threshold is then the one that maximises validation accuracy.
"""

from __future__ import annotations

import numpy as np


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = logits.astype(np.float64) / temperature
    # log(1 + exp(-|z|)) form: stable for large |z|
    losses = np.maximum(scaled, 0) - scaled * labels + np.log1p(np.exp(-np.abs(scaled)))
    return float(losses.mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising validation negative log-likelihood (log-grid search, then a finer one)."""
    if len(logits) == 0:
        raise ValueError("cannot fit a temperature on zero examples")
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 161))
    best = min(grid, key=lambda t: negative_log_likelihood(logits, labels, t))
    fine = best * np.exp(np.linspace(-0.05, 0.05, 41))
    return float(min(fine, key=lambda t: negative_log_likelihood(logits, labels, t)))


def choose_threshold(p_fake: np.ndarray, labels: np.ndarray) -> float:
    """The threshold in [0.05, 0.95] with the best validation accuracy; ties go to the one nearest 0.5."""
    candidates = np.round(np.arange(0.05, 0.9501, 0.005), 3)
    accuracy = np.array([((p_fake >= t) == (labels >= 0.5)).mean() for t in candidates])
    best = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])
