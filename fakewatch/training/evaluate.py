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
from fakewatch.classifiers.base import Classifier
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


def _resize(factor: float) -> Degradation:
    def degrade(rgb: np.ndarray) -> bytes:
        height, width = rgb.shape[:2]
        shape = (max(1, round(width * factor)), max(1, round(height * factor)))
        method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        return imaging.encode_png(cv2.resize(rgb, shape, interpolation=method))
    return degrade


def _blur(rgb: np.ndarray) -> bytes:
    return imaging.encode_png(cv2.GaussianBlur(rgb, (0, 0), 1.0))


ROBUSTNESS: dict[str, Degradation] = {
    "jpeg_q60": lambda rgb: imaging.encode_jpeg(rgb, 60), "jpeg_q75": _jpeg75,
    "jpeg_q90": lambda rgb: imaging.encode_jpeg(rgb, 90), "resize_0.5x": _resize(0.5), "resize_2x": _resize(2.0),
    "blur_sigma1": _blur,
}


def grouped_samples(folder: str | Path, manifest: str | Path | None = None) -> list[Any]:
    """Labelled files under ``folder/real`` and ``folder/fake`` with their group: the first sub-folder, or
    the manifest's ``group``/``generator``/``source`` column for the file (path relative to ``folder``)."""
    import csv

    from fakewatch.training.photo_data import Sample, discover

    samples = discover(folder)
    if manifest is None:
        return samples
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    grouped = []
    for sample in samples:
        row = rows.get(Path(sample.path).relative_to(folder).as_posix())
        name = next((row[key] for key in ("group", "generator", "source") if row and row.get(key)), None)
        label = "fake" if sample.label else "real"
        grouped.append(Sample(sample.path, sample.label, f"{label}/{name}" if name else sample.group, sample.prompt))
    return grouped


def evaluate_groups(classifier: Classifier, samples: list[Any], uncertain_margin: float, limits: Limits,
                    robustness: bool = True) -> dict[str, Any]:
    """Per-group and total figures for ``samples`` through the scanner's own path (decode, crops, classifier,
    mean crop logit), clean and after each degradation in :data:`ROBUSTNESS`."""
    from fakewatch.classifiers.base import predict_prepared
    from fakewatch.training.group_metrics import group_report

    def decoded(sample: Any) -> np.ndarray | None:
        try:
            return imaging.decode(imaging.read_bytes(sample.path, limits.max_file_bytes), limits.max_pixels)
        except imaging.ImageError:
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(decoded, samples))
    kept = [(sample, rgb) for sample, rgb in zip(samples, images) if rgb is not None]
    samples = [sample for sample, _ in kept]

    def score(transform: Degradation | None) -> np.ndarray:
        def prepared(rgb: np.ndarray) -> np.ndarray:
            if transform is not None:
                rgb = imaging.decode(transform(rgb), limits.max_pixels)
            return imaging.prepare(rgb, classifier.spec)

        p_fake = []
        for start in range(0, len(kept), 256):
            with ThreadPoolExecutor(max_workers=4) as pool:
                crops = list(pool.map(prepared, [rgb for _, rgb in kept[start:start + 256]]))
            p_fake.append(predict_prepared(classifier, crops))
        return np.concatenate(p_fake) if p_fake else np.zeros(0)

    clean = score(None)
    results: dict[str, Any] = {"groups": group_report(samples, clean, classifier.threshold, uncertain_margin),
                               "_p_fake": clean, "_labels": np.array([s.label for s in samples], np.float32),
                               "unreadable_skipped": len(images) - len(kept)}
    if robustness:
        results["robustness"] = {name: group_report(samples, score(transform), classifier.threshold,
                                                    uncertain_margin)["totals"]
                                 for name, transform in ROBUSTNESS.items()}
    return results
