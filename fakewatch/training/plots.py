"""PNG plots for evaluation reports: training curves, confusion matrix, ROC curve, reliability diagram,
per-group bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fakewatch.training.metrics import CLASS_NAMES, reliability, roc_curve  # noqa: E402


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def training_curves(path: Path, history: dict[str, list[float]]) -> None:
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    panels = ((loss_axis, "loss", "Loss (binary cross-entropy)"), (accuracy_axis, "accuracy", "Accuracy"))
    for axis, key, title in panels:
        if key in history:
            axis.plot(epochs, history[key], label="train", marker="o", markersize=3)
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], label="validation", marker="o", markersize=3)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def confusion_matrix(path: Path, matrix: list[list[int]]) -> None:
    values = np.array(matrix, dtype=float)
    shares = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(2):
        for column in range(2):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, f"{int(values[row, column]):,}\n{shares[row, column]:.1%}",
                      ha="center", va="center", color=colour, fontsize=11)
    axis.set_xticks([0, 1], [f"predicted {name}" for name in CLASS_NAMES])
    axis.set_yticks([0, 1], [f"true {name}" for name in CLASS_NAMES])
    axis.set_title("Confusion matrix")
    _save(figure, path)


def roc(path: Path, labels: np.ndarray, p_fake: np.ndarray, auc: float) -> None:
    fpr, tpr = roc_curve(labels, p_fake)
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot(fpr, tpr, label=f"classifier (AUC {auc:.4f})")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axis.set_xlabel("false-positive rate (real called fake)")
    axis.set_ylabel("true-positive rate (fakes caught)")
    axis.set_title("ROC curve")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    _save(figure, path)


def reliability_diagram(path: Path, labels: np.ndarray, p_fake: np.ndarray, ece: float) -> None:
    rows = reliability(labels, p_fake, bins=10)
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    centres = [(row["low"] + row["high"]) / 2 for row in rows]
    axis.bar(centres, [row["accuracy"] for row in rows], width=0.045, alpha=0.7, label="accuracy in bin")
    axis.plot([0.5, 1], [0.5, 1], linestyle="--", color="grey", label="perfect calibration")
    axis.plot([row["confidence"] for row in rows], [row["accuracy"] for row in rows], "o-", color="C1",
              label="mean confidence")
    axis.set_xlim(0.5, 1)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("confidence in the predicted class")
    axis.set_ylabel("observed accuracy")
    axis.set_title(f"Reliability (ECE {ece:.4f})")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left")
    _save(figure, path)


def group_bars(path: Path, groups: dict[str, dict[str, float]], title: str) -> None:
    """One bar per group: its accuracy (fakes caught, or real photos passed), fakes and reals coloured apart."""
    names = sorted(groups, key=lambda name: (groups[name]["label"], name))
    values = [groups[name]["accuracy"] for name in names]
    colours = ["#c0392b" if groups[name]["label"] == "fake" else "#2471a3" for name in names]
    figure, axis = plt.subplots(figsize=(10, max(3.0, 0.22 * len(names) + 1)))
    axis.barh(np.arange(len(names)), values, color=colours)
    axis.set_yticks(np.arange(len(names)), [f"{name} ({groups[name]['count']})" for name in names], fontsize=7)
    axis.set_xlim(0, 1)
    axis.axvline(0.5, color="grey", linewidth=0.8, linestyle="--")
    axis.set_xlabel("accuracy (red: fake groups, share caught; blue: real groups, share passed)")
    axis.set_title(title)
    axis.invert_yaxis()
    _save(figure, path)
