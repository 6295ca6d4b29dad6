"""Keeping the classifiers current: collect new labels, train a candidate, gate it, promote or reject.

    new labels (analysts + inbox) -> next training set -> the labelled images this domain's classifier
    judges (routed by size, as the scanner routes them) -> candidate (fine-tuned from the active version,
    or a fresh network or head) -> candidate and active evaluated on the same fixed benchmark plus the new
    labelled data -> promoted when it is not worse on the benchmark (within a tolerance) and better on the
    new data; otherwise kept in the registry as rejected. The comparison is written to the candidate's
    gate.json. "The new data" in the comparison is a held-out quarter of the new images, unseen by the
    candidate.

Refresh works per domain. Training sets are shared; each domain remembers the set its last refresh used
(:meth:`TrainingSets.consumed`), so a label is new to the photo classifier until a photo refresh has
trained on it, whatever the thumbnail refresh did meanwhile. A whole-frame classifier retrains with
:func:`fakewatch.training.train.train`; a crop classifier (the photo domain) with
:func:`fakewatch.training.photo.train_photo`, from the active version's own network.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakewatch import imaging
from fakewatch.classifiers.loading import load as load_classifier
from fakewatch.config import Limits, Settings
from fakewatch.db.session import Database
from fakewatch.errors import ConfigError, ImageError
from fakewatch.registry import GATE_FILE, ClassifierVersion, Domain, Registry, narrowest
from fakewatch.training.dataset import Split, load_dataset
from fakewatch.training.inbox import Item, TrainingSets
from fakewatch.training.metrics import classification_report
from fakewatch.training.options import TrainOptions

log = logging.getLogger(__name__)
ALL_DOMAINS = "all"


@dataclass(frozen=True)
class RefreshOutcome:
    status: str  # "skipped", "promoted" or "rejected"
    reason: str
    candidate: str | None = None
    comparison: dict[str, Any] | None = None
    domain: str | None = None


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
    "better on the new data" is measured on images the candidate has not seen (they train next time).
    At least two are kept out; with fewer than four new images, all of them are (nothing new is trained)."""
    if len(digests) < 4:
        return set(digests)
    chosen = {digest for digest in digests if int(digest[:8], 16) % 4 == 0}
    if 2 <= len(chosen) < len(digests):
        return chosen
    return set(sorted(digests, key=lambda digest: int(digest[:8], 16))[:max(2, len(digests) // 4)])


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


def score_folder(version: ClassifierVersion, folder: Path, settings: Settings) -> dict[str, float]:
    """Accuracy and ROC-AUC of one version on every image of a labelled folder, through the path its
    classifier is used on: whole frames for a whole-frame classifier, the scanner's crops for a crop one."""
    if version.spec.crops == "resize":
        return score(version, _whole(folder, version, settings.limits, settings.seed), settings.batch_size,
                     settings.runtime)
    from fakewatch.training.evaluate import evaluate_groups, grouped_samples

    classifier = load_classifier(version, settings.batch_size, settings.runtime)
    totals = evaluate_groups(classifier, grouped_samples(folder), settings.uncertain_margin, settings.limits,
                             robustness=False)["groups"]["totals"]
    return {"accuracy": totals["accuracy"], "roc_auc": totals.get("roc_auc", float("nan")),
            "count": totals["count"]}


def active_routes(registry: Registry) -> list[tuple[Domain, str]]:
    """(domain, its name) for every active classifier: what the scanner routes images by."""
    domains = {version.version: version.domain for version in registry.versions()}
    return [(domains[version] if version in domains else registry.find(version).domain, name)
            for name, version in registry.active_versions().items()]


def routed_domain(data: bytes, routes: list[tuple[Domain, str]]) -> str | None:
    """The domain whose active classifier the scanner would give this image to, by the size its header
    announces (None: none covers it, or it is not a readable image)."""
    try:
        height, width = imaging.dimensions(data)
    except ImageError:
        return None
    return narrowest(routes, height, width)


def _domain_items(sets: TrainingSets, new: dict[str, tuple[Item, bytes]], domain: str,
                  registry: Registry) -> tuple[dict[str, Item], dict[str, Item]]:
    """(every labelled item this domain's classifier judges, the ones it has not trained on yet) among the
    latest training set plus ``new``."""
    consumed_version = sets.consumed(domain)
    consumed = {} if consumed_version is None else \
        {entry["sha256"]: entry["label"] for entry in sets.manifest(consumed_version)["items"]}
    items = {**sets.latest_items(), **{digest: item for digest, (item, _) in new.items()}}
    routes, mine = active_routes(registry), {}
    for digest, item in items.items():
        data = new[digest][1] if digest in new else sets.object_bytes(item)
        if routed_domain(data, routes) == domain:
            mine[digest] = item
    return mine, {digest: item for digest, item in mine.items() if consumed.get(digest) != item.label}


def refresh_domains(settings: Settings, database: Database, registry: Registry, force: bool = False,
                    report: Callable[[str], None] = log.info, domain: str | None = None) -> list[RefreshOutcome]:
    """:func:`refresh` for ``domain`` (default: ``refresh_domain``); ``all`` refreshes each active domain that
    has a benchmark in turn (the others are reported as skipped)."""
    chosen = domain or settings.refresh_domain
    if chosen != ALL_DOMAINS or settings.classifier:
        return [refresh(settings, database, registry, force, report, None if chosen == ALL_DOMAINS else chosen)]
    outcomes = []
    for name in sorted(registry.active_versions()):
        if settings.for_domain("benchmark_dir", name):
            outcomes.append(refresh(settings, database, registry, force, report, name))
        else:
            outcomes.append(RefreshOutcome("skipped", f"no benchmark_dir for the {name} domain", domain=name))
    return outcomes


def refresh(settings: Settings, database: Database, registry: Registry, force: bool = False,
            report: Callable[[str], None] = log.info, domain: str | None = None) -> RefreshOutcome:
    """Retrain ``domain``'s active classifier (default: ``refresh_domain``) when enough new labelled images
    it would judge have arrived (or ``force``), then gate the candidate."""
    active = registry.resolve(None) if settings.classifier else \
        registry.resolve(domain or settings.refresh_domain)
    name = active.domain.name
    benchmark_dir = settings.for_domain("benchmark_dir", name)
    if not benchmark_dir:
        raise ConfigError(f"refresh needs a fixed benchmark for the {name} domain: set benchmark_dir "
                          f"(FAKEWATCH_BENCHMARK_DIR) to a labelled folder, or to {name}=FOLDER;...")
    sets = TrainingSets(settings.home_path / "trainsets")
    new = sets.collect(database, settings.inbox_path, settings.limits, settings.follow_outside_links)
    mine, unseen = _domain_items(sets, new, name, registry)
    if len(unseen) < settings.refresh_min_labels and not force:
        return RefreshOutcome("skipped", f"{len(unseen)} new labelled images for the {name} classifier, "
                                         f"{settings.refresh_min_labels} needed", domain=name)
    if not unseen:
        return RefreshOutcome("skipped", f"no new labelled images for the {name} classifier", domain=name)
    trainset = sets.publish(new) if new else sets.versions()[-1]
    report(f"training set {trainset}: {len(unseen)} new labelled images for {active.version} ({name})")
    held_out = holdout(set(unseen))
    base = settings.for_domain("base_data", name)
    with tempfile.TemporaryDirectory(prefix="fakewatch-refresh-") as scratch:
        folder = sets.materialise(trainset, Path(scratch) / "train", only=set(mine) - held_out)
        new_only = sets.materialise(trainset, Path(scratch) / "new", only=held_out)
        description = f"training set {trainset} (refresh of {active.version})" + \
            (f" extending {base}" if base else "")
        if active.spec.crops == "resize":
            candidate = _train_whole_frame(settings, registry, active, folder, base, description, report)
        else:
            candidate = _train_crops(settings, registry, active, folder, base, description, report)
        comparison: dict[str, Any] = {}
        for role, version in (("active", active), ("candidate", candidate)):
            comparison[role] = {"version": version.version,
                                "benchmark": score_folder(version, Path(benchmark_dir), settings),
                                "new_data": score_folder(version, new_only, settings)}
    promoted, reason = gate(comparison["active"], comparison["candidate"], settings.refresh_tolerance)
    sets.mark_consumed(name, trainset)
    status = "promoted" if promoted else "rejected"
    record = {"status": status, "reason": reason, "trainset": trainset, "domain": name,
              "mode": settings.refresh_mode, "tolerance": settings.refresh_tolerance,
              "new_data_held_out": len(held_out), "comparison": comparison}
    (candidate.path / GATE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if promoted:
        registry.activate(candidate.version)
    report(f"{candidate.version} {status}: {reason}")
    return RefreshOutcome(status, reason, candidate.version, comparison, domain=name)


def _train_whole_frame(settings: Settings, registry: Registry, active: ClassifierVersion, folder: Path, base: str,
                       description: str, report: Callable[[str], None]) -> ClassifierVersion:
    finetune = settings.refresh_mode == "finetune"
    options = TrainOptions(
        data_dir=str(folder), limits=settings.limits, extra_dirs=(base,) if base else (),
        arch=active.card["architecture"], input_size=active.spec.size, epochs=settings.refresh_epochs,
        learning_rate=1e-4 if finetune else 1e-3, seed=settings.seed, parent=active if finetune else None,
        verbose=0, valid_fraction=0.2, test_fraction=0.2, uncertain_margin=settings.uncertain_margin,
        description=description,
    )
    from fakewatch.training.train import train  # TensorFlow: only once there is something to train

    return train(options, registry, log_progress=report)


def _train_crops(settings: Settings, registry: Registry, active: ClassifierVersion, folder: Path, base: str,
                 description: str, report: Callable[[str], None]) -> ClassifierVersion:
    """A crop classifier's candidate: the active version's own network (its backbone and crop policy),
    its tuned blocks and logit layer trained further (finetune) or its logit layer started afresh (scratch)."""
    from fakewatch.training.photo import PhotoOptions, refresh_options, train_photo  # TensorFlow

    finetune = settings.refresh_mode == "finetune"
    options: PhotoOptions = refresh_options(
        active, data_dir=str(folder), extra_dirs=(base,) if base else (), limits=settings.limits,
        epochs=settings.refresh_epochs, learning_rate=1e-4 if finetune else 3e-4, fresh_head=not finetune,
        seed=settings.seed, uncertain_margin=settings.uncertain_margin, description=description)
    return train_photo(options, registry, log_progress=report)
