"""Commands that train, evaluate and refresh classifiers, and manage the classifier registry."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fakewatch.cli.base import cli, command_settings, open_database
from fakewatch.config import Settings

if TYPE_CHECKING:
    from fakewatch.registry import Registry


def _registry(settings: Settings) -> Registry:
    """The classifier registry (imported here, not at start-up: it brings the image decoders)."""
    from fakewatch.registry import Registry

    return Registry(settings)

# --- training ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--arch", type=click.Choice(["cnn", "resnet"]), default="resnet", show_default=True,
              help="cnn: classic small CNN baseline; resnet: residual network sized for the input.")
@click.option("--input-size", type=int, help="Square input size in pixels. [FAKEWATCH_TRAIN_INPUT_SIZE, 32]")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="Local ImageNet weights file for ResNet50 (input size >= 224). Nothing is downloaded.")
@click.option("--width", type=int, default=32, show_default=True, help="Small ResNet: channels of the first stage.")
@click.option("--blocks", default="2,1,1", show_default=True,
              help="Small ResNet: residual blocks per stage, one number or three (e.g. 2,1,1).")
@click.option("--stem", type=click.Choice(["patch", "full"]), default="patch", show_default=True,
              help="Small ResNet: patch = 2x2 stride-2 stem (fast), full = 3x3 at full resolution.")
@click.option("--epochs", type=int, default=18, show_default=True, help="Most epochs (early stopping may end sooner).")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--learning-rate", type=float, default=1e-3, show_default=True)
@click.option("--patience", type=int, default=5, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--valid-fraction", type=float, default=0.05, show_default=True,
              help="Share carved out for validation (when the folder has no valid/ split).")
@click.option("--test-fraction", type=float, default=0.05, show_default=True,
              help="Share carved out for the test report (real/ + fake/ layout only).")
@click.option("--description", default="", help="Training-data description recorded in the card.")
@click.option("--activate/--no-activate", default=False, show_default=True,
              help="Make the new version the active classifier.")
@click.option("--seed", type=int, help="Random seed. [FAKEWATCH_SEED, 1337]")
@click.pass_context
def train(ctx: click.Context, data_dir: str, arch: str, input_size: int | None, weights: str | None, width: int,
          blocks: str, stem: str, epochs: int, batch_size: int, learning_rate: float, patience: int,
          valid_fraction: float, test_fraction: float, description: str, activate: bool, seed: int | None) -> None:
    """Train a classifier on DATA_DIR and publish it to the registry.

    DATA_DIR holds real/ and fake/ folders (split for you: deduplicated, stratified, seeded), or
    train/, valid/ and test/ folders that each hold them. Folder names are case-insensitive.
    """
    from fakewatch.training.options import TrainOptions

    settings = command_settings(ctx, train_input_size=input_size, seed=seed)
    options = TrainOptions(  # checks every option before any image is decoded or TensorFlow imported
        data_dir=data_dir, limits=settings.limits, arch=arch, input_size=settings.train_input_size, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, patience=patience, weights=weights, width=width,
        blocks=blocks, stem=stem, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=settings.seed,
        uncertain_margin=settings.uncertain_margin, description=description,
        command=_reproduce(ctx, settings), verbose=0 if ctx.obj["quiet"] else 1 if sys.stdout.isatty() else 2,
    )
    from fakewatch.training.train import train as run_training

    version = run_training(options, _registry(settings), log_progress=click.echo, activate=activate)
    _print_summary(version.card)
    click.echo(f"published {version.version} to {version.path}" + (" (active)" if activate else ""))


@cli.command("train-photo")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--backbone-weights", type=click.Path(exists=True, dir_okay=False),
              help="Converted ImageNet EfficientNet-Lite weights (`make backbone` writes them). Nothing is "
                   "downloaded. Without it the backbone starts from random weights: only for trying the pipeline.")
@click.option("--variant", type=click.Choice(["lite0", "lite1", "lite2"]), default="lite0", show_default=True)
@click.option("--crop", type=int, default=224, show_default=True, help="Crop size in pixels (native resolution).")
@click.option("--max-crops", type=int, default=5, show_default=True, help="Most crops one image is scored from.")
@click.option("--pixels-per-crop", type=click.IntRange(0), default=0, show_default=True,
              help="Score one crop per this many pixels of the image (rounded up), up to --max-crops, so that "
                   "larger images are seen in more places (0: always --max-crops).")
@click.option("--tune-blocks", type=int, default=1, show_default=True,
              help="Backbone blocks fine-tuned with the head (0: the logit layer alone, on frozen features).")
@click.option("--copies", type=int, default=4, show_default=True, help="Augmented training crops per image.")
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--learning-rate", type=float, default=3e-4, show_default=True)
@click.option("--holdout-group", "holdout_groups", multiple=True,
              help="Group pattern kept out of training and validation and reported as the test "
                   "(repeatable), e.g. 'fake/*FLUX*' or 'real/bsd100'.")
@click.option("--test-fraction", type=float, default=0.1, show_default=True,
              help="Random share of every trained group kept for the in-training test figure.")
@click.option("--validation", type=click.Choice(["random", "groups"]), default="random", show_default=True,
              help="Where temperature and threshold are chosen: 'random', a random share of every trained group's "
                   "images; 'groups', whole groups (generators, sources of real photos) left out of training, "
                   "as unseen as the held-out ones.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True,
              help="Share of the images (of each label, with --validation groups) used for validation.")
@click.option("--residual-width", type=click.IntRange(0, 64), default=16, show_default=True,
              help="Width of the residual view, a patch network on the high-pass NPR residual trained from scratch "
                   "and fused with the backbone by logistic regression on validation images (0: the backbone alone).")
@click.option("--residual-epochs", type=click.IntRange(1), default=6, show_default=True,
              help="Epochs of the residual view's training.")
@click.option("--target-fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Choose the threshold so that at most this share of the validation real photos is flagged "
                   "fake (default: the threshold with the best balanced accuracy).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="The data manifest DATA_DIR was built from (`make data`); its name and SHA-256 go in the card.")
@click.option("--description", default="", help="Training-data description recorded in the card.")
@click.option("--activate/--no-activate", default=False, show_default=True,
              help="Make the new version the active classifier for the photo domain.")
@click.option("--seed", type=int, help="Random seed. [FAKEWATCH_SEED, 1337]")
@click.pass_context
def train_photo(ctx: click.Context, data_dir: str, backbone_weights: str | None, variant: str, crop: int,
                max_crops: int, pixels_per_crop: int, tune_blocks: int, copies: int, epochs: int, learning_rate: float,
                holdout_groups: tuple[str, ...], test_fraction: float, validation: str, valid_fraction: float,
                residual_width: int, residual_epochs: int, target_fpr: float | None,
                manifest: str | None, description: str, activate: bool, seed: int | None) -> None:
    """Train the photo classifier on DATA_DIR (real/<source>/..., fake/<generator>/...) and publish it.

    An ImageNet EfficientNet-Lite backbone sees native-resolution crops; its last blocks and a logit layer
    are fine-tuned. Beside it a residual view (a small patch network on the high-pass NPR residual) is
    trained from scratch on the same crops, and the two views' logits are fused by a logistic regression
    fitted on validation images. An image's p_fake is the calibrated mean of its crops' fused logits.
    Temperature and threshold come from validation images that are not held out (``--validation``: a random
    share of the trained groups, or whole groups left out of training).
    """
    from fakewatch.training.photo import PhotoOptions

    settings = command_settings(ctx, seed=seed)
    options = PhotoOptions(data_dir=data_dir, backbone_weights=backbone_weights, limits=settings.limits,
                           variant=variant, crop=crop, max_crops=max_crops,
                           pixels_per_crop=pixels_per_crop, tune_blocks=tune_blocks, copies=copies,
                           epochs=epochs, learning_rate=learning_rate, holdout_groups=list(holdout_groups),
                           test_fraction=test_fraction, validation=validation, valid_fraction=valid_fraction,
                           residual_width=residual_width, residual_epochs=residual_epochs, target_fpr=target_fpr,
                           manifest=manifest,
                           seed=settings.seed, uncertain_margin=settings.uncertain_margin, description=description,
                           command=_reproduce(ctx, settings, "train-photo"))
    from fakewatch.training.photo import train_photo as run_training

    version = run_training(options, _registry(settings), log_progress=click.echo, activate=activate)
    for key, name in (("test", "in-training test carve"), ("heldout", "held-out groups")):
        totals = version.card["metrics"].get(key, {}).get("totals", {})
        if totals:
            click.echo(f"{name}: {totals['count']} images, balanced accuracy "
                       f"{totals.get('balanced_accuracy', float('nan')):.3f}, "
                       f"ROC-AUC {totals.get('roc_auc', float('nan')):.3f}, "
                       f"real flagged fake {totals.get('false_positive_rate', float('nan')):.3f}, "
                       f"ECE {totals['ece']:.3f}")
    click.echo(f"published {version.version} to {version.path}" + (" (active)" if activate else ""))


def _reproduce(ctx: click.Context, settings: Settings, command: str = "train") -> str:
    """The full `fakewatch train` (or `train-photo`) command line that reproduces this run, defaults spelled
    out."""
    params = {**ctx.params, "seed": settings.seed}
    if command == "train":
        params["input_size"] = settings.train_input_size
    words = ["fakewatch", command, params.pop("data_dir")]
    for name, value in params.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, tuple):
            for item in value:
                words += [flag.removesuffix("s"), str(item)]
        elif value not in (None, ""):
            words += [flag, str(value)]
    return shlex.join(words)


@cli.command()
@click.option("--force", is_flag=True, help="Retrain even if fewer than refresh_min_labels new labels arrived.")
@click.option("--mode", type=click.Choice(["finetune", "scratch"]), help="[FAKEWATCH_REFRESH_MODE]")
@click.option("--domain", help="The domain whose classifier to retrain (thumbnail, photo, ...), or all. "
                               "[FAKEWATCH_REFRESH_DOMAIN, thumbnail]")
@click.pass_context
def refresh(ctx: click.Context, force: bool, mode: str | None, domain: str | None) -> None:
    """Retrain from new labelled data, gate the candidate, promote it or keep it as rejected.

    New data: analysts' labels (`fakewatch label`) and files in INBOX/real and INBOX/fake, each used by the
    domain whose classifier would judge it (by size, as scanning routes images). The candidate and the
    active classifier are compared on benchmark_dir plus the new data; the decision is recorded and shown
    by `fakewatch classifiers list`.
    """
    from fakewatch.training.refresh import refresh_domains

    settings = command_settings(ctx, refresh_mode=mode)
    outcomes = refresh_domains(settings, open_database(settings), _registry(settings), force, click.echo, domain)
    for outcome in outcomes:
        click.echo(f"refresh {outcome.status} ({outcome.domain}): {outcome.reason}")


@cli.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="fakewatch-evaluation", show_default=True,
              help="Folder for metrics.json and the plots.")
@click.option("--runtime", type=click.Choice(["lite", "keras"]), help="What runs the network. [FAKEWATCH_RUNTIME]")
@click.option("--domain", help="Evaluate the classifier active for this domain (thumbnail, photo, ...).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="CSV naming each file's group (columns: file, and group, generator or source); without it, "
                   "the sub-folder under real/ or fake/ is the group.")
@click.option("--robustness/--no-robustness", default=True, show_default=True,
              help="Also score the images after JPEG q60/75/90, 0.5x and 2x resizing and a light blur.")
@click.pass_context
def evaluate(ctx: click.Context, data_dir: str, out: str, runtime: str | None, domain: str | None,
             manifest: str | None, robustness: bool) -> None:
    """Evaluate a classifier on a labelled folder: per-group and total metrics, robustness and plots.

    Every image goes through the scanner's path (decode, crops, classifier). Accuracy, ROC-AUC and the
    false-positive rate are reported per group (generator or source) beside the totals. A whole-frame
    classifier also gets the classic report on the folder's test/ split when it has one.
    """
    from fakewatch.classifiers.loading import load as load_classifier
    from fakewatch.training import evaluate as evaluation
    from fakewatch.training import plots

    settings = command_settings(ctx, runtime=runtime)
    version = _registry(settings).resolve(domain)
    classifier = load_classifier(version, settings.batch_size, settings.runtime)
    folder = Path(data_dir)
    children = {child.name.lower() for child in folder.iterdir() if child.is_dir()}
    metrics: dict[str, Any] = {"version": version.version, "domain": version.domain.describe()}
    if version.spec.crops == "resize":
        results, split = evaluation.evaluate_folder(classifier, data_dir, settings.uncertain_margin,
                                                    settings.limits, settings.seed)
        metrics.update(evaluation.write_report(Path(out), results, split.labels))
    if {"real", "fake"} <= children:
        samples = evaluation.grouped_samples(folder, manifest)
        grouped = evaluation.evaluate_groups(classifier, samples, settings.uncertain_margin, settings.limits,
                                             robustness)
        metrics["groups"] = grouped["groups"]
        metrics["robustness"] = grouped.get("robustness", {})
        if "clean" not in metrics:  # crop classifiers: the classic report comes from the same scores
            clean = _clean_report(grouped, classifier, settings)
            metrics.update(evaluation.write_report(Path(out), {"clean": clean, "_p_fake": grouped["_p_fake"]},
                                                   grouped["_labels"]))
        plots.group_bars(Path(out) / "groups.png", grouped["groups"]["groups"], f"{version.version} by group")
        (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n",
                                               encoding="utf-8")
        _print_groups(grouped)
    _print_summary({"version": version.version, "metrics": metrics})
    click.echo(f"wrote {out}/metrics.json and plots")


def _clean_report(grouped: dict[str, Any], classifier: Any, settings: Settings) -> dict[str, Any]:
    from fakewatch.training.metrics import classification_report

    return classification_report(grouped["_labels"], grouped["_p_fake"], classifier.threshold,
                                 settings.uncertain_margin)


def _print_groups(grouped: dict[str, Any]) -> None:
    click.echo(f"{'GROUP':<60}{'N':>6}{'ACCURACY':>10}{'AUC':>8}{'FPR':>7}")
    for name, row in grouped["groups"]["groups"].items():
        auc = f"{row['roc_auc']:.3f}" if row.get("roc_auc") == row.get("roc_auc") and "roc_auc" in row else "-"
        fpr = f"{row['false_positive_rate']:.3f}" if "false_positive_rate" in row else "-"
        click.echo(f"{name[:59]:<60}{row['count']:>6}{row['accuracy']:>10.3f}{auc:>8}{fpr:>7}")
    totals = grouped["groups"]["totals"]
    click.echo(f"{'TOTAL (balanced accuracy)':<60}{totals['count']:>6}"
               f"{totals.get('balanced_accuracy', totals['accuracy']):>10.3f}"
               f"{totals.get('roc_auc', float('nan')):>8.3f}"
               f"{totals.get('false_positive_rate', float('nan')):>7.3f}")
    for name, row in grouped.get("robustness", {}).items():
        click.echo(f"  after {name:<20} balanced accuracy {row.get('balanced_accuracy', row['accuracy']):.3f}, "
                   f"real flagged fake {row.get('false_positive_rate', float('nan')):.3f}")


def _print_summary(card: dict[str, Any]) -> None:
    metrics = card.get("metrics", {})
    clean = metrics.get("clean")
    if not clean:
        return
    click.echo(f"{card['version']}: {clean['count']} images")
    click.echo(f"  accuracy {clean['accuracy']:.4f}  ROC-AUC {clean['roc_auc']:.4f}  F1(fake) {clean['f1']:.4f}  "
               f"ECE {clean['ece']:.4f}  uncertain {clean['uncertain_rate']:.1%}")
    for name in ("jpeg_q75", "downscale_2x"):
        if name in metrics:
            click.echo(f"  {name}: accuracy {metrics[name]['accuracy']:.4f} "
                       f"(drop {100 * metrics[name]['accuracy_drop']:.2f} points)")


# --- classifier registry ----------------------------------------------------------------------------


@cli.group()
def classifiers() -> None:
    """List, inspect and activate classifier versions."""


@classifiers.command("list")
@click.pass_context
def classifiers_list(ctx: click.Context) -> None:
    """Every known version, oldest first; * marks the active one."""
    from fakewatch.registry import summary_metrics

    registry = _registry(command_settings(ctx))
    active = set(registry.active_versions().values())
    click.echo(f"{'':2}{'VERSION':<36}{'DOMAIN':<10}{'ARCH':<22}{'SIZE':>5}  {'ACCURACY':>8}  {'AUC':>6}  "
               f"{'PARENT':<28}{'SOURCE':<9}STATUS")
    for version in registry.versions():
        summary = summary_metrics(version.card)
        accuracy = f"{summary['accuracy']:.4f}" if "accuracy" in summary else "-"
        auc = f"{summary['roc_auc']:.4f}" if "roc_auc" in summary else "-"
        marker = "*" if version.version in active else ""
        gate = version.gate
        state = "active" if marker else (gate["status"] if gate else "-")
        if gate and gate["status"] == "rejected":
            state += f" ({gate['reason']})"
        click.echo(f"{marker:2}{version.version:<36}{version.domain.name:<10}{version.card['architecture']:<22}"
                   f"{version.spec.size:>5}  {accuracy:>8}  {auc:>6}  {str(version.card['parent'] or '-'):<28}"
                   f"{'shipped' if version.builtin else 'registry':<9}{state}")


@classifiers.command("show")
@click.argument("reference", required=False)
@click.option("--domain", help="Show the version active for this domain (thumbnail, photo, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole card as JSON.")
@click.pass_context
def classifiers_show(ctx: click.Context, reference: str | None, domain: str | None, as_json: bool) -> None:
    """Summarize a version's card (default: the active version, photo domain first); --json prints all of it."""
    from fakewatch.cli.summaries import card_lines
    from fakewatch.registry import summary_metrics

    registry = _registry(command_settings(ctx))
    version = registry.find(reference) if reference else registry.resolve(domain)
    card = {key: value for key, value in version.card.items() if key != "history"}
    if version.gate:
        card["gate"] = version.gate
    if as_json:
        click.echo(json.dumps({"path": str(version.path), **card}, indent=2, sort_keys=True))
        return
    active = version.version in registry.active_versions().values()
    for line in card_lines(str(version.path), card, summary_metrics(card), active):
        click.echo(line)


@classifiers.command("export")
@click.argument("reference", required=False)
@click.pass_context
def classifiers_export(ctx: click.Context, reference: str | None) -> None:
    """Add a checked ONNX export to REFERENCE (default: the active version), so it runs without TensorFlow.

    The export and the Keras network classify the version's check batch and must agree within 1e-4 in
    p_fake; the card records the largest difference.
    """
    registry = _registry(command_settings(ctx))
    version = registry.find(reference) if reference else registry.resolve()
    from fakewatch.classifiers.export import export_version

    record = export_version(version.path)
    click.echo(f"exported {version.version} to {version.path / record['file']}: largest |delta p_fake| "
               f"{record['max_abs_delta_p_fake']:.1e} on {record['check_images']} check images "
               f"({record['check_source']})")


@classifiers.command("activate")
@click.argument("reference")
@click.pass_context
def classifiers_activate(ctx: click.Context, reference: str) -> None:
    """Make REFERENCE (a version id or directory) the active classifier for its domain.

    One version is active per domain; activating a version whose domain is `any` makes it the only one.
    """
    registry = _registry(command_settings(ctx))
    version = registry.activate(reference)
    click.echo(f"active classifier for {version.domain.describe()}: {version.version}")
    others = {domain: name for domain, name in registry.active_versions().items() if name != version.version}
    if others:
        click.echo("also active: " + ", ".join(f"{name} ({domain})" for domain, name in sorted(others.items())))
