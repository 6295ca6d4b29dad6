"""Evaluate a classifier on labelled images, clean and under degradation, and write the report.

Degradations go through the same loading path as everything else: decode the original file, degrade
it (JPEG re-compression at quality 75; downscale by 2), re-encode, and load as the scanner would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakewatch import imaging
from fakewatch.classifier import Classifier
from fakewatch.config import Limits
from fakewatch.training import plots
from fakewatch.training.dataset import Split, load_dataset
from fakewatch.training.metrics import classification_report

Degradation = Callable[[np.ndarray], bytes]


def _jpeg75(rgb: np.ndarray) -> bytes:
    return imaging.encode_jpeg(rgb, 75)


def _downscale2(rgb: np.ndarray) -> bytes:
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    return imaging.encode_png(small)


DEGRADATIONS: dict[str, Degradation] = {"jpeg_q75": _jpeg75, "downscale_2x": _downscale2}


def load_degraded(paths: list[str], spec: imaging.InputSpec, degradation: Degradation,
                  limits: Limits) -> np.ndarray:
    """Each file decoded, degraded, re-encoded and loaded through the scanner's path."""
    def one(path: str) -> np.ndarray:
        rgb = imaging.decode(imaging.read_bytes(path, limits.max_file_bytes), limits.max_pixels)
        return imaging.load_input(degradation(rgb), spec, limits.max_pixels)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return np.stack(list(pool.map(one, paths)))


def evaluate_split(classifier: Classifier, split: Split, uncertain_margin: float,
                   limits: Limits) -> dict[str, Any]:
    """Clean and degraded reports for one split, plus the accuracy drop each degradation costs."""
    clean_p = classifier.predict(split.images)
    results: dict[str, Any] = {"clean": classification_report(split.labels, clean_p, classifier.threshold,
                                                              uncertain_margin)}
    for name, degradation in DEGRADATIONS.items():
        p_fake = classifier.predict(load_degraded(split.paths, classifier.spec, degradation, limits))
        report = classification_report(split.labels, p_fake, classifier.threshold, uncertain_margin)
        report["accuracy_drop"] = results["clean"]["accuracy"] - report["accuracy"]
        results[name] = report
    results["_p_fake"] = clean_p
    return results


def evaluate_folder(classifier: Classifier, folder: str | Path, uncertain_margin: float, limits: Limits,
                    seed: int = 1337) -> tuple[dict[str, Any], Split]:
    """Evaluate on a labelled folder: its test split when it has one, else every image in it."""
    dataset = load_dataset(folder, classifier.spec, limits, valid_fraction=0.5, test_fraction=0.0, seed=seed)
    if "test" in dataset.splits:
        split, which = dataset.splits["test"], "test"
    else:
        split, which = dataset.whole(), "all"
    results = evaluate_split(classifier, split, uncertain_margin, limits)
    results["data"] = {**dataset.describe(), "evaluated_split": which}
    return results, split


def write_report(out_dir: Path, results: dict[str, Any], labels: np.ndarray,
                 history: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """Write metrics.json and the PNG plots; return the JSON-ready metrics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    p_fake = results["_p_fake"]
    metrics = {key: value for key, value in results.items() if not key.startswith("_")}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    clean = metrics["clean"]
    plots.confusion_matrix(out_dir / "confusion_matrix.png", clean["confusion_matrix"])
    plots.roc(out_dir / "roc.png", labels, p_fake, clean["roc_auc"])
    plots.reliability_diagram(out_dir / "reliability.png", labels, p_fake, clean["ece"])
    if history:
        plots.training_curves(out_dir / "training_curves.png", history)
    return metrics
