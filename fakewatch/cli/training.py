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


def _reproduce(ctx: click.Context, settings: Settings) -> str:
    """The full `fakewatch train` command line that reproduces this run, defaults spelled out."""
    params = {**ctx.params, "input_size": settings.train_input_size, "seed": settings.seed}
    words = ["fakewatch", "train", params.pop("data_dir")]
    for name, value in params.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + name.replace("_", "-"))
        elif value not in (None, ""):
            words += [flag, str(value)]
    return shlex.join(words)


@cli.command()
@click.option("--force", is_flag=True, help="Retrain even if fewer than refresh_min_labels new labels arrived.")
@click.option("--mode", type=click.Choice(["finetune", "scratch"]), help="[FAKEWATCH_REFRESH_MODE]")
@click.pass_context
def refresh(ctx: click.Context, force: bool, mode: str | None) -> None:
    """Retrain from new labelled data, gate the candidate, promote it or keep it as rejected.

    New data: analysts' labels (`fakewatch label`) and files in INBOX/real and INBOX/fake. The candidate
    and the active classifier are compared on benchmark_dir plus the new data; the decision is recorded
    and shown by `fakewatch classifiers list`.
    """
    from fakewatch.training.refresh import refresh as run_refresh

    settings = command_settings(ctx, refresh_mode=mode)
    outcome = run_refresh(settings, open_database(settings), _registry(settings), force, click.echo)
    click.echo(f"refresh {outcome.status}: {outcome.reason}")


@cli.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="fakewatch-evaluation", show_default=True,
              help="Folder for metrics.json and the plots.")
@click.option("--runtime", type=click.Choice(["lite", "keras"]), help="What runs the network. [FAKEWATCH_RUNTIME]")
@click.pass_context
def evaluate(ctx: click.Context, data_dir: str, out: str, runtime: str | None) -> None:
    """Evaluate the classifier on a labelled folder: metrics, robustness and plots.

    Uses the folder's test/ split when it has one, otherwise every image under real/ and fake/.
    """
    from fakewatch.classifier import load as load_classifier
    from fakewatch.training import evaluate as evaluation

    settings = command_settings(ctx, runtime=runtime)
    version = _registry(settings).resolve()
    classifier = load_classifier(version, settings.batch_size, settings.runtime)
    results, split = evaluation.evaluate_folder(classifier, data_dir, settings.uncertain_margin, settings.limits,
                                                settings.seed)
    metrics = evaluation.write_report(Path(out), results, split.labels)
    _print_summary({"version": version.version, "metrics": metrics})
    click.echo(f"wrote {out}/metrics.json and plots")


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
    registry = _registry(command_settings(ctx))
    active = registry.active_version()
    click.echo(f"{'':2}{'VERSION':<28}{'ARCH':<8}{'SIZE':>5}  {'ACCURACY':>8}  {'AUC':>6}  {'PARENT':<28}"
               f"{'SOURCE':<9}STATUS")
    for version in registry.versions():
        clean = version.card.get("metrics", {}).get("clean", {})
        accuracy = f"{clean['accuracy']:.4f}" if "accuracy" in clean else "-"
        auc = f"{clean['roc_auc']:.4f}" if "roc_auc" in clean else "-"
        marker = "*" if version.version == active else ""
        gate = version.gate
        state = "active" if marker else (gate["status"] if gate else "-")
        if gate and gate["status"] == "rejected":
            state += f" ({gate['reason']})"
        click.echo(f"{marker:2}{version.version:<28}{version.card['architecture']:<8}{version.spec.size:>5}  "
                   f"{accuracy:>8}  {auc:>6}  {str(version.card['parent'] or '-'):<28}"
                   f"{'shipped' if version.builtin else 'registry':<9}{state}")


@classifiers.command("show")
@click.argument("reference", required=False)
@click.pass_context
def classifiers_show(ctx: click.Context, reference: str | None) -> None:
    """Print a version's card as JSON (default: the active version)."""
    registry = _registry(command_settings(ctx))
    version = registry.find(reference) if reference else registry.resolve()
    card = {key: value for key, value in version.card.items() if key != "history"}
    if version.gate:
        card["gate"] = version.gate
    click.echo(json.dumps({"path": str(version.path), **card}, indent=2, sort_keys=True))


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
    from fakewatch.export import export_version

    record = export_version(version.path)
    click.echo(f"exported {version.version} to {version.path / record['file']}: largest |delta p_fake| "
               f"{record['max_abs_delta_p_fake']:.1e} on {record['check_images']} check images "
               f"({record['check_source']})")


@classifiers.command("activate")
@click.argument("reference")
@click.pass_context
def classifiers_activate(ctx: click.Context, reference: str) -> None:
    """Make REFERENCE (a version id or directory) the active classifier."""
    version = _registry(command_settings(ctx)).activate(reference)
    click.echo(f"active classifier: {version.version}")
