"""The shipped photo classifier on its own test carves, clean and after re-saving, resizing and blurring.

    python bench/photo_robustness.py [DATA] [--version VERSION]

Rebuilds the carves recorded in the classifier's card (same data folder, held-out groups, fractions and
seed): the in-training test carve (a random share of every trained group) and the held-out repositories,
then scores both through the scanner's path clean and after JPEG quality 60/75/90, 0.5x and 2x resizing and
a light blur. Prints a Markdown table: balanced accuracy and the share of real photos flagged fake.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from common import ROOT

from fakewatch.classifiers.loading import load
from fakewatch.config import load_settings
from fakewatch.registry import Registry
from fakewatch.training import photo_data
from fakewatch.training.evaluate import evaluate_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=ROOT / "data" / "photo")
    parser.add_argument("--version", help="classifier version (default: the active photo classifier)")
    parser.add_argument("--max-crops", type=int, help="score with this many crops instead of the card's")
    args = parser.parse_args()
    settings = load_settings(env={})
    registry = Registry(settings)
    version = registry.find(args.version) if args.version else registry.resolve("photo")
    training = version.card["training_data"]
    decoded = photo_data.decode_all(photo_data.discover(args.data), settings.limits)
    recipe = version.card["training"]  # the carve is drawn again exactly as training drew it
    parts = photo_data.carve(decoded.samples, training["holdout_groups"], recipe.get("valid_fraction", 0.1), 0.1,
                             int(recipe["seed"]), recipe.get("validation", "random"))
    classifier = load(version, settings.batch_size, settings.runtime)
    if args.max_crops:
        classifier.spec = dataclasses.replace(classifier.spec, max_crops=args.max_crops)  # type: ignore[misc]
    print(f"max crops {classifier.spec.max_crops}")
    print(f"| {version.version} | carve | images | clean | JPEG q60 | JPEG q75 | JPEG q90 | 0.5x | 2x | blur |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, key in (("in-training test carve", "carve"), ("held-out repositories", "heldout")):
        samples = [decoded.samples[i] for i in parts[key]]
        result = evaluate_groups(classifier, samples, settings.uncertain_margin, settings.limits)
        rows = {"clean": result["groups"]["totals"], **result["robustness"]}
        measures = (("balanced_accuracy", "balanced accuracy"), ("false_positive_rate", "real flagged fake"))
        for measure, label in measures:
            cells = [f"{rows[column].get(measure, np.nan):.3f}" for column in
                     ("clean", "jpeg_q60", "jpeg_q75", "jpeg_q90", "resize_0.5x", "resize_2x", "blur_sigma1")]
            print(f"| {label} | {name} | {len(samples)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
