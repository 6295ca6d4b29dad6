"""The second approach, measured on the same leave-out folds as bench/photo_leaveout.py: a small network
trained from scratch on the neighbouring-pixel residual (:mod:`fakewatch.training.npr`), scoring 64 px
patches and averaging them over each crop.

    python bench/photo_npr.py DATA [--folds 0,1,2,...] [--epochs 6] [--out build/photo-leaveout]

Uses the same images, augmented training crops (same seed), validation and test carves as the leave-out
benchmark; prints a Markdown table and writes OUT/leaveout-npr.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from photo_leaveout import FOLDS, carve_fold, random_carve

from fakewatch.classifiers.base import calibrated
from fakewatch.config import Limits
from fakewatch.imaging import InputSpec
from fakewatch.training import npr, photo_data
from fakewatch.training.calibration import fit_temperature
from fakewatch.training.group_metrics import balanced_threshold, group_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--folds", default=",".join(str(index) for index in range(len(FOLDS) + 1)),
                        help="0 = in-training carve, 1.. = leave-out folds (default: all)")
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", type=Path, default=Path("build/photo-leaveout"))
    args = parser.parse_args()
    decoded = photo_data.decode_all(photo_data.discover(args.data), Limits(100_000_000, 200 << 20))
    samples = decoded.samples
    crops, owners = photo_data.training_crops(decoded.images, 224, args.copies, args.seed)
    score_crops, score_owners = photo_data.scoring_crops(decoded.images, InputSpec(size=224, crops="tiles",
                                                                                   max_crops=5))
    labels = np.array([s.label for s in samples], np.float64)
    folds = [("in-training: random 10% carve of all groups", random_carve(samples, args.seed))]
    folds += [(name, carve_fold(samples, fakes, reals, prompts, index, args.seed))
              for index, (name, fakes, reals, prompts) in enumerate(FOLDS)]
    results = {}
    print("| head | held out | test images | balanced accuracy | ROC-AUC | real flagged fake | ECE | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for index in (int(value) for value in args.folds.split(",")):
        name, parts = folds[index]
        started = time.perf_counter()
        rows = np.flatnonzero(np.isin(owners, parts["train"]))
        patches, patch_owner = npr.random_patches(crops[rows], 64, 2, args.seed)
        model = npr.build(64)
        npr.fit(model, patches, labels[owners[rows][patch_owner]], args.epochs, 2e-3, args.seed)
        scorer = npr.build(224)
        scorer.set_weights(model.get_weights())
        logits = {}
        for split in ("valid", "test"):
            members = np.flatnonzero(np.isin(score_owners, parts[split]))
            position = np.searchsorted(parts[split], score_owners[members])
            crop_logits = scorer.predict(score_crops[members].astype(np.float32), batch_size=64, verbose=0)[:, 0]
            logits[split] = photo_data.mean_by_owner(crop_logits.astype(np.float64), position, len(parts[split]))
        temperature = fit_temperature(logits["valid"], labels[parts["valid"]])
        threshold = balanced_threshold(calibrated(logits["valid"], temperature), labels[parts["valid"]])
        report = group_report([samples[i] for i in parts["test"]], calibrated(logits["test"], temperature),
                              threshold, 0.1)
        results[name] = report
        totals = report["totals"]
        print(f"| npr | {name} | {totals['count']} | {totals['balanced_accuracy']:.3f} | {totals['roc_auc']:.3f} | "
              f"{totals['false_positive_rate']:.3f} | {totals['ece']:.3f} | {time.perf_counter() - started:.0f} |",
              flush=True)
    held = [report["totals"] for name, report in results.items() if not name.startswith("in-training")]
    if held:
        print(f"| npr | **mean of leave-out folds run** | | {np.mean([t['balanced_accuracy'] for t in held]):.3f} | "
              f"{np.mean([t['roc_auc'] for t in held]):.3f} | "
              f"{np.mean([t['false_positive_rate'] for t in held]):.3f} | {np.mean([t['ece'] for t in held]):.3f} | |")
    (args.out / "leaveout-npr.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
