"""Keeping the classifier current: collect new labels, train a candidate, gate it, promote or reject.

    new labels (analysts + inbox) -> next training set -> candidate (fine-tuned from the active version,
    or from scratch) -> candidate and active evaluated on the same fixed benchmark plus the new labelled
    data -> promoted when it is not worse on the benchmark (within a tolerance) and better on the new data;
    otherwise kept in the registry as rejected. The comparison is written to the candidate's gate.json.
    "The new data" in the comparison is a held-out quarter of the new images, unseen by the candidate.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakewatch.classifier import load as load_classifier
from fakewatch.config import Limits, Settings
from fakewatch.db.session import Database
from fakewatch.errors import ConfigError
from fakewatch.registry import GATE_FILE, ClassifierVersion, Registry
from fakewatch.training.dataset import Split, load_dataset
from fakewatch.training.inbox import TrainingSets
from fakewatch.training.metrics import classification_report
from fakewatch.training.options import TrainOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    status: str  # "skipped", "promoted" or "rejected"
    reason: str
    candidate: str | None = None
    comparison: dict[str, Any] | None = None


def _whole(folder: Path, version: ClassifierVersion, limits: Limits, seed: int) -> Split:
    """Every image of a labelled folder as one split."""
    return load_dataset(folder, version.spec, limits, valid_fraction=0.5, test_fraction=0.0, seed=seed).whole()


def score(version: ClassifierVersion, split: Split, batch_size: int, runtime: str = "lite") -> dict[str, float]:
    """Accuracy and ROC-AUC of one version on one split (what the gate compares)."""
    classifier = load_classifier(version, batch_size, runtime)
    report = classification_report(split.labels, classifier.predict(split.images), classifier.threshold)
    return {"accuracy": report["accuracy"], "roc_auc": report["roc_auc"], "count": report["count"]}


def holdout(digests: set[str]) -> set[str]:
    """About a quarter of the new images, chosen by content hash, kept out of this refresh's training so
    "better on the new data" is measured on images the candidate has not seen (they train next time)."""
    chosen = {digest for digest in digests if int(digest[:8], 16) % 4 == 0}
    return chosen if 2 <= len(chosen) < len(digests) else set(digests)


def gate(active: dict[str, Any], candidate: dict[str, Any],
         tolerance: float) -> tuple[bool, str]:
    """The promotion rule: not worse on the benchmark (within ``tolerance``), better on the new data."""
    for metric in ("accuracy", "roc_auc"):
        if candidate["benchmark"][metric] < active["benchmark"][metric] - tolerance:
            return False, (f"benchmark {metric} {candidate['benchmark'][metric]:.4f} is below the active "
                           f"{active['benchmark'][metric]:.4f} - {tolerance}")
    if candidate["new_data"]["accuracy"] <= active["new_data"]["accuracy"]:
        return False, (f"new-data accuracy {candidate['new_data']['accuracy']:.4f} is not better than the "
                       f"active {active['new_data']['accuracy']:.4f}")
    return True, "not worse on the benchmark and better on the new labelled data"


def refresh(settings: Settings, database: Database, registry: Registry, force: bool = False,
            report: Callable[[str], None] = log.info) -> RefreshOutcome:
    """Retrain when enough new labelled data has arrived (or ``force``), then gate the candidate."""
    if not settings.benchmark_dir:
        raise ConfigError("refresh needs a fixed benchmark: set benchmark_dir (FAKEWATCH_BENCHMARK_DIR) to a "
                          "labelled folder")
    sets = TrainingSets(settings.home_path / "trainsets")
    new = sets.collect(database, settings.inbox_path, settings.limits, settings.follow_outside_links)
    if len(new) < settings.refresh_min_labels and not force:
        return RefreshOutcome("skipped", f"{len(new)} new labelled images, {settings.refresh_min_labels} needed")
    if not new:
        return RefreshOutcome("skipped", "no new labelled images")
    active = registry.resolve(None if settings.classifier else settings.refresh_domain)
    if active.spec.crops != "resize":
        raise ConfigError(f"refresh retrains whole-frame classifiers; {active.version} ({active.domain.name}) is a "
                          f"crop classifier: retrain it with the `fakewatch train-photo` command in its card")
    trainset = sets.publish(new)
    report(f"training set {trainset}: {len(new)} new labelled images")
    held_out = holdout(set(new))
    with tempfile.TemporaryDirectory(prefix="fakewatch-refresh-") as scratch:
        folder = sets.materialise(trainset, Path(scratch) / "train", exclude=held_out)
        new_only = sets.materialise(trainset, Path(scratch) / "new", only=held_out)
        options = TrainOptions(
            data_dir=str(folder), limits=settings.limits,
            extra_dirs=(settings.base_data,) if settings.base_data else (),
            arch=active.card["architecture"], input_size=active.spec.size, epochs=settings.refresh_epochs,
            learning_rate=1e-4 if settings.refresh_mode == "finetune" else 1e-3, seed=settings.seed,
            parent=active if settings.refresh_mode == "finetune" else None, verbose=0,
            valid_fraction=0.2, test_fraction=0.2, uncertain_margin=settings.uncertain_margin,
            description=f"training set {trainset} (refresh of {active.version})" +
                        (f" extending {settings.base_data}" if settings.base_data else ""),
        )
        from fakewatch.training.train import train  # TensorFlow: only once there is something to train

        candidate = train(options, registry, log_progress=report)
        benchmark = Path(settings.benchmark_dir)
        comparison: dict[str, Any] = {}
        for name, version in (("active", active), ("candidate", candidate)):
            def scored(folder: Path, version: ClassifierVersion = version) -> dict[str, float]:
                split = _whole(folder, version, settings.limits, settings.seed)
                return score(version, split, settings.batch_size, settings.runtime)

            comparison[name] = {"version": version.version, "benchmark": scored(benchmark),
                                "new_data": scored(new_only)}
    promoted, reason = gate(comparison["active"], comparison["candidate"], settings.refresh_tolerance)
    status = "promoted" if promoted else "rejected"
    record = {"status": status, "reason": reason, "trainset": trainset, "tolerance": settings.refresh_tolerance,
              "new_data_held_out": len(held_out), "comparison": comparison}
    (candidate.path / GATE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if promoted:
        registry.activate(candidate.version)
    report(f"{candidate.version} {status}: {reason}")
    return RefreshOutcome(status, reason, candidate.version, comparison)
