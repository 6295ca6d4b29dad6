"""Every fakewatch command. The only module that prints or exits.

Commands parse arguments, build :class:`Settings` once, call library code and print. A
:class:`FakewatchError` becomes a one-line message and exit code 2; an interrupted command exits 130.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from fakewatch.config import Settings, load_settings, setting_fields
from fakewatch.errors import FakewatchError
from fakewatch.registry import Registry

EXIT_SETUP_ERROR = 2


def _settings(ctx: click.Context, **command_overrides: Any) -> Settings:
    overrides = {**ctx.obj["overrides"], **command_overrides}
    return load_settings(overrides)


def handled(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn FakewatchError into a clean message and exit code instead of a traceback."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FakewatchError as exc:
            click.echo(f"fakewatch: error: {exc}", err=True)
            sys.exit(EXIT_SETUP_ERROR)
        except KeyboardInterrupt:
            click.echo("fakewatch: interrupted", err=True)
            sys.exit(130)
    return wrapper


def _configure_logging(verbose: int, quiet: bool, level: str | None) -> None:
    if quiet:
        chosen = logging.ERROR
    elif verbose:
        chosen = logging.DEBUG
    else:
        chosen = getattr(logging, (level or "INFO").upper(), logging.INFO)
    logging.basicConfig(level=chosen, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL", "alembic", "watchdog"):
        logging.getLogger(noisy).setLevel(max(chosen, logging.WARNING))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", help="Data folder (database, classifiers). [FAKEWATCH_HOME]")
@click.option("--database-url", help="SQLAlchemy database URL. [FAKEWATCH_DATABASE_URL]")
@click.option("--classifier", help="Classifier version id or directory. [FAKEWATCH_CLASSIFIER]")
@click.option("--broker-url", help="Celery broker URL; empty = embedded mode. [FAKEWATCH_BROKER_URL]")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_context
def cli(ctx: click.Context, home: str | None, database_url: str | None, classifier: str | None,
        broker_url: str | None, verbose: int, quiet: bool) -> None:
    """fakewatch: find AI-generated images in folders and archives.

    \b
    First steps:
      fakewatch scan ~/Pictures          classify every image under a folder
      fakewatch results --label fake     list what was flagged
      fakewatch watch ~/Incoming         keep classifying new files as they arrive
    """
    ctx.ensure_object(dict)
    ctx.obj["overrides"] = {"home": home, "database_url": database_url, "classifier": classifier,
                            "broker_url": broker_url}
    ctx.obj["quiet"] = quiet
    try:
        level = load_settings(ctx.obj["overrides"]).log_level
    except FakewatchError:
        level = None  # reported properly by the command itself
    _configure_logging(verbose, quiet, level)


@cli.command("settings")
@click.pass_context
@handled
def settings_command(ctx: click.Context) -> None:
    """Show every setting, its resolved value and what it does."""
    settings = _settings(ctx)
    for field in setting_fields():
        value = getattr(settings, field.name)
        click.echo(f"{field.name} = {value!r}    [FAKEWATCH_{field.name.upper()}]")
        click.echo(f"    {field.metadata['help']}")
    click.echo(f"(database: {settings.resolved_database_url}; registry: {settings.registry_path})")


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
@handled
def train(ctx: click.Context, data_dir: str, arch: str, input_size: int | None, weights: str | None, width: int,
          blocks: str, stem: str, epochs: int, batch_size: int, learning_rate: float, patience: int,
          valid_fraction: float, test_fraction: float, description: str, activate: bool, seed: int | None) -> None:
    """Train a classifier on DATA_DIR and publish it to the registry.

    DATA_DIR holds real/ and fake/ folders (split for you: deduplicated, stratified, seeded), or
    train/, valid/ and test/ folders that each hold them. Folder names are case-insensitive.
    """
    from fakewatch.training.train import TrainOptions
    from fakewatch.training.train import train as run_training

    settings = _settings(ctx, train_input_size=input_size, seed=seed)
    options = TrainOptions(
        data_dir=data_dir, arch=arch, input_size=settings.train_input_size, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, patience=patience, weights=weights, width=width,
        blocks=blocks, stem=stem, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=settings.seed,
        uncertain_margin=settings.uncertain_margin, description=description,
        command=_reproduce(ctx, settings), verbose=0 if ctx.obj["quiet"] else 1 if sys.stdout.isatty() else 2,
    )
    version = run_training(options, Registry(settings), log_progress=click.echo, activate=activate)
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
@handled
def refresh(ctx: click.Context, force: bool, mode: str | None) -> None:
    """Retrain from new labelled data, gate the candidate, promote it or keep it as rejected.

    New data: analysts' labels (`fakewatch label`) and files in INBOX/real and INBOX/fake. The candidate
    and the active classifier are compared on benchmark_dir plus the new data; the decision is recorded
    and shown by `fakewatch classifiers list`.
    """
    from fakewatch.db.session import Database
    from fakewatch.training.refresh import refresh as run_refresh

    settings = _settings(ctx, refresh_mode=mode)
    outcome = run_refresh(settings, Database(settings.resolved_database_url), Registry(settings), force, click.echo)
    click.echo(f"refresh {outcome.status}: {outcome.reason}")


@cli.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="fakewatch-evaluation", show_default=True,
              help="Folder for metrics.json and the plots.")
@click.pass_context
@handled
def evaluate(ctx: click.Context, data_dir: str, out: str) -> None:
    """Evaluate the classifier on a labelled folder: metrics, robustness and plots.

    Uses the folder's test/ split when it has one, otherwise every image under real/ and fake/.
    """
    from fakewatch.classifier import load as load_classifier
    from fakewatch.training import evaluate as evaluation

    settings = _settings(ctx)
    version = Registry(settings).resolve()
    classifier = load_classifier(version, settings.batch_size)
    results, split = evaluation.evaluate_folder(classifier, data_dir, settings.uncertain_margin, settings.seed)
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
@handled
def classifiers_list(ctx: click.Context) -> None:
    """Every known version, oldest first; * marks the active one."""
    registry = Registry(_settings(ctx))
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
@handled
def classifiers_show(ctx: click.Context, reference: str | None) -> None:
    """Print a version's card as JSON (default: the active version)."""
    registry = Registry(_settings(ctx))
    version = registry.find(reference) if reference else registry.resolve()
    card = {key: value for key, value in version.card.items() if key != "history"}
    if version.gate:
        card["gate"] = version.gate
    click.echo(json.dumps({"path": str(version.path), **card}, indent=2, sort_keys=True))


@classifiers.command("activate")
@click.argument("reference")
@click.pass_context
@handled
def classifiers_activate(ctx: click.Context, reference: str) -> None:
    """Make REFERENCE (a version id or directory) the active classifier."""
    version = Registry(_settings(ctx)).activate(reference)
    click.echo(f"active classifier: {version.version}")


# --- scanning and watching --------------------------------------------------------------------------


def _format_option(choices: tuple[str, ...], default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--format", "output_format", type=click.Choice(choices), default=default, show_default=True,
                        help="Output format.")


def _embedded(settings: Settings) -> tuple[Any, Any]:
    from fakewatch import wiring

    return wiring.embedded(settings)


def _emit_rows(rows: list[dict[str, Any]], output_format: str) -> None:
    """JSON: every record. Text: only errors, on stderr (the summary lists totals)."""
    for row in rows:
        if output_format == "json":
            click.echo(json.dumps(row, sort_keys=True))
        elif row["status"] == "error":
            click.echo(f"error  {row['error_kind']:<11} {row['path']}: {row['error']}", err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--force", is_flag=True, help="Re-classify content the active classifier has already seen.")
@_format_option(("text", "json"), "text")
@click.option("--include", multiple=True, help="Only file names matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip file names or paths matching this glob (repeatable).")
@click.pass_context
@handled
def scan(ctx: click.Context, paths: tuple[str, ...], force: bool, output_format: str, include: tuple[str, ...],
         exclude: tuple[str, ...]) -> None:
    """Classify every image under PATHS (files or folders, recursive) and record the verdicts.

    Content already classified by the active classifier is skipped unless --force. Exit code 0 when the
    scan ran (files with errors are recorded, not fatal); 2 on a setup error.
    """
    from fakewatch.watcher.intake import count
    from fakewatch.watcher.scan import scan as run_scan

    quiet = ctx.obj["quiet"]
    settings = _settings(ctx, include=include or None, exclude=exclude or None)
    intake, runtime = _embedded(settings) if settings.embedded else _distributed_intake(settings)
    total = count(paths, intake.file_filter)
    show_bar = not quiet and output_format == "text"
    progress_bar: Any = click.progressbar(length=total, label="scanning", file=sys.stderr, show_eta=True,
                                          show_percent=True, hidden=not show_bar)
    with progress_bar as bar:
        started = time.perf_counter()

        def progress(done: int) -> None:
            bar.update(done)
            elapsed = time.perf_counter() - started
            bar.label = f"scanning {bar.pos / elapsed:,.0f} files/s" if elapsed > 0 else "scanning"

        summary = run_scan(intake, paths, force, lambda rows: _emit_rows(rows, output_format), progress)
    if runtime is not None:
        runtime.close()
    if not quiet and output_format == "text":
        _print_scan_summary(summary, settings)


def _print_scan_summary(summary: Any, settings: Settings) -> None:
    click.echo(f"{summary.files:,} files in {summary.seconds:.1f} s ({summary.rate:,.0f} files/s)")
    labels = ", ".join(f"{summary.by_label[name]:,} {name}" for name in ("fake", "real", "uncertain"))
    click.echo(f"  verdicts: {labels}")
    if summary.by_status.get("pending"):
        click.echo(f"  queued for workers: {summary.by_status['pending']:,}")
    if summary.by_error:
        click.echo("  errors: " + ", ".join(f"{count:,} {kind}" for kind, count in sorted(summary.by_error.items())))
    click.echo(f"  database: {settings.resolved_database_url}")
    if summary.by_label.get("fake"):
        click.echo("  list the fakes: fakewatch results --label fake")


@cli.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--polling/--no-polling", default=None,
              help="Poll instead of OS events (network shares). [FAKEWATCH_POLLING]")
@click.option("--interval", type=float, help="Seconds between polls. [FAKEWATCH_POLL_INTERVAL]")
@click.option("--stability-delay", type=float, help="Seconds a file must stay unchanged. [FAKEWATCH_STABILITY_DELAY]")
@click.option("--rescan-interval", type=float, help="Seconds between safety-net rescans. [FAKEWATCH_RESCAN_INTERVAL]")
@click.option("--include", multiple=True, help="Only file names matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip file names or paths matching this glob (repeatable).")
@click.pass_context
@handled
def watch(ctx: click.Context, folders: tuple[str, ...], polling: bool | None, interval: float | None,
          stability_delay: float | None, rescan_interval: float | None, include: tuple[str, ...],
          exclude: tuple[str, ...]) -> None:
    """Watch FOLDERS (recursively) and classify new images as they arrive. Stop with Ctrl-C or SIGTERM.

    On start it catches up on files that arrived while it was stopped. In embedded mode it classifies
    in-process; with a broker configured it records files and queues their ids for workers.
    """
    import signal

    from fakewatch.watcher.observer import Watcher

    settings = _settings(ctx, polling=polling, poll_interval=interval, stability_delay=stability_delay,
                         rescan_interval=rescan_interval, include=include or None, exclude=exclude or None)
    intake, runtime = _embedded(settings) if settings.embedded else _distributed_intake(settings)
    if runtime is not None:
        _ = runtime.classifier  # load before the first file arrives: low first-verdict latency

    log = logging.getLogger("fakewatch.watch")

    def report(recorded: dict[str, tuple[int, str]]) -> None:
        ids = [image_id for image_id, _ in recorded.values()]
        with intake.database.session() as session:
            for row in _queries().rows_for_ids(session, ids):
                if row["status"] == "error":
                    log.warning("%s: %s (%s)", row["path"], row["error"], row["error_kind"])
                elif row["label"]:
                    log.info("%s: %s (p_fake %.3f)", row["path"], row["label"], row["p_fake"])

    watcher = Watcher(intake, list(folders), on_batch=report)
    if not settings.embedded:
        watcher.housekeeping = intake.dispatcher.sweep  # re-queue ids lost to a broker restart or a dead worker
        watcher.housekeeping_interval = settings.sweep_interval
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: watcher.stop.set())
    mode = "embedded" if settings.embedded else f"distributed via {settings.broker_url}"
    logging.getLogger("fakewatch.watch").info("watching %s (%s mode, %s)", ", ".join(folders), mode,
                                              "polling" if settings.polling else "OS events")
    watcher.run()
    if runtime is not None:
        runtime.close()


def _find_image(session: Any, reference: str) -> Any:
    """An image by id, by path as given, or by absolute path."""
    queries = _queries()
    image = queries.find_image(session, reference) or queries.find_image(session, str(Path(reference).resolve()))
    if image is None:
        raise FakewatchError(f"no image {reference!r} in the database; scan it first")
    return image


def _queries() -> Any:
    from fakewatch.db import queries

    return queries


def _distributed_intake(settings: Settings) -> tuple[Any, None]:
    from fakewatch import wiring

    intake, _ = wiring.distributed(settings)
    return intake, None


# --- distributed mode -------------------------------------------------------------------------------


def _require_broker(settings: Settings) -> None:
    if settings.embedded:
        raise FakewatchError("this command needs a broker: set FAKEWATCH_BROKER_URL (e.g. redis://localhost:6379/0) "
                             "or pass --broker-url")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--force", is_flag=True, help="Re-classify content the active classifier has already seen.")
@click.option("--include", multiple=True, help="Only file names matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip file names or paths matching this glob (repeatable).")
@click.pass_context
@handled
def enqueue(ctx: click.Context, paths: tuple[str, ...], force: bool, include: tuple[str, ...],
            exclude: tuple[str, ...]) -> None:
    """Record every image under PATHS and queue their ids for workers (distributed mode, streaming)."""
    from fakewatch import wiring
    from fakewatch.watcher.intake import count
    from fakewatch.watcher.scan import scan as run_scan

    settings = _settings(ctx, include=include or None, exclude=exclude or None)
    _require_broker(settings)
    intake, dispatcher = wiring.distributed(settings)
    total = count(paths, intake.file_filter)
    with click.progressbar(length=total, label="enqueueing", file=sys.stderr, show_eta=True,
                           hidden=ctx.obj["quiet"]) as bar:
        summary = run_scan(intake, paths, force, on_progress=bar.update)
    if not ctx.obj["quiet"]:
        click.echo(f"{summary.files:,} files recorded in {summary.seconds:.1f} s; {dispatcher.sent:,} queued "
                   f"for workers on queue {settings.queue!r}; "
                   f"already classified: {summary.by_status.get('done', 0):,}; "
                   f"errors: {summary.by_status.get('error', 0):,}")


@cli.command()
@click.option("--older-than", type=float, help="Seconds pending since queued. [FAKEWATCH_SWEEP_AFTER]")
@click.pass_context
@handled
def sweep(ctx: click.Context, older_than: float | None) -> None:
    """Queue again images left pending (lost message, killed worker). Safe to run on a schedule."""
    from fakewatch.db.session import Database
    from fakewatch.watcher.enqueue import QueueDispatcher

    settings = _settings(ctx, sweep_after=older_than)
    _require_broker(settings)
    count = QueueDispatcher(settings, Database(settings.resolved_database_url)).sweep()
    click.echo(f"re-queued {count:,} pending images")


@cli.command()
@click.option("--queues", default="cpu", show_default=True,
              help="Comma-separated queues to consume: cpu, gpu, training.")
@click.option("--concurrency", type=int, default=1, show_default=True,
              help="Worker processes. TensorFlow already uses every core in one process; see the README.")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork", show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--beat", is_flag=True, help="Also run the scheduler for refreshes every refresh_interval seconds "
                                           "(run it in exactly one worker).")
@click.pass_context
@handled
def worker(ctx: click.Context, queues: str, concurrency: int, pool: str, loglevel: str, beat: bool) -> None:
    """Run a Celery worker that classifies queued batches (distributed mode).

    The classifier is loaded lazily in each worker process and reused; it picks up the settings
    (database, classifier, broker) from the environment like every other command.
    """
    from fakewatch.worker.app import configure

    settings = _settings(ctx)
    _require_broker(settings)
    app = configure(settings)
    arguments = ["worker", f"--queues={queues}", f"--concurrency={concurrency}", f"--pool={pool}",
                 f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
                 f"--hostname=fakewatch-{pool}-%h-{os.getpid()}"]
    if beat:
        if not settings.refresh_interval:
            raise FakewatchError("--beat schedules refreshes, but refresh_interval is 0 (off); "
                                 "set FAKEWATCH_REFRESH_INTERVAL")
        arguments.append("--beat")
    app.worker_main(arguments)


@cli.command()
@_format_option(("text", "json"), "text")
@click.pass_context
@handled
def status(ctx: click.Context, output_format: str) -> None:
    """Queue depths, workers online, image counts and recent throughput."""
    from fakewatch.db.session import Database
    from fakewatch.watcher import monitor

    settings = _settings(ctx)
    report = monitor.status(settings, Database(settings.resolved_database_url))
    if output_format == "json":
        click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
        return
    click.echo(f"mode: {report['mode']}")
    if report.get("queues") is not None:
        click.echo("queues: " + ", ".join(f"{name}: {depth}" for name, depth in report["queues"].items()))
        click.echo(f"workers online: {len(report['workers'])}" +
                   (f" ({', '.join(report['workers'])})" if report["workers"] else ""))
    click.echo("images: " + ", ".join(f"{name}: {count:,}" for name, count in sorted(report["images"].items())))
    click.echo("verdicts per minute: " + ", ".join(f"last {window}: {rate:,.1f}"
                                                   for window, rate in report["throughput_per_minute"].items()))


# --- querying ---------------------------------------------------------------------------------------


def _parse_since(value: str | None) -> Any:
    if value is None:
        return None
    import re
    from datetime import UTC, datetime, timedelta

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", value.strip())
    if match:
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("use an ISO date/time (2026-11-01, 2026-11-01T12:00) "
                                 "or an age like 30m, 2h, 7d") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


RESULT_COLUMNS = ("id", "path", "sha256", "size", "status", "label", "p_fake", "confidence", "threshold",
                  "classifier", "classified_at", "error_kind", "error", "deleted")


def _result_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options shared by `results` and `rescan`; they arrive as one ``filters`` argument."""
    options = [
        click.option("--label", type=click.Choice(["fake", "real", "uncertain"]), help="Only this verdict label."),
        click.option("--min-confidence", type=float, help="Only verdicts at least this confident (0.5-1)."),
        click.option("--since", help="Only verdicts since an ISO time or an age (30m, 2h, 7d)."),
        click.option("--path", "path_glob", help="Only paths matching this glob (* matches across folders)."),
        click.option("--classifier", "classifier_version", help="Verdicts of this classifier version "
                                                                "(default: each image's latest)."),
        click.option("--status", type=click.Choice(["pending", "done", "error", "skipped"]),
                     help="Only images in this state."),
        click.option("--disagreements", is_flag=True, help="Only images whose verdict contradicts an analyst label."),
        click.option("--changed", is_flag=True, help="Only images whose latest verdict changed label from the "
                                                     "one before (e.g. after a re-scan)."),
        click.option("--include-deleted", is_flag=True, help="Include files that have since been deleted."),
        click.option("--limit", type=int, help="At most this many rows."),
    ]

    @wraps(command)
    def wrapper(*args: Any, label: str | None, min_confidence: float | None, since: str | None,
                path_glob: str | None, classifier_version: str | None, status: str | None, disagreements: bool,
                changed: bool, include_deleted: bool, limit: int | None, **kwargs: Any) -> Any:
        from fakewatch.db.queries import ResultFilter

        filters = ResultFilter(label=label, min_confidence=min_confidence, since=_parse_since(since),
                               path_glob=path_glob, classifier=classifier_version, status=status,
                               disagreements=disagreements, changed=changed, include_deleted=include_deleted,
                               limit=limit)
        return command(*args, filters=filters, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@cli.command()
@_result_filters
@_format_option(("table", "csv", "json", "paths"), "table")
@click.pass_context
@handled
def results(ctx: click.Context, filters: Any, output_format: str) -> None:
    """List images and their latest verdicts, newest first.

    \b
    Examples:
      fakewatch results --label fake --min-confidence 0.9
      fakewatch results --since 1d --format csv > today.csv
      fakewatch results --label fake --format paths | xargs -d '\\n' ls -l
      fakewatch results --changed          # label changed by the latest re-scan
    """
    from fakewatch.db.session import Database

    settings = _settings(ctx)
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        _print_results(_queries().results(session, filters), output_format)


@cli.command()
@_result_filters
@click.pass_context
@handled
def rescan(ctx: click.Context, filters: Any) -> None:
    """Classify existing images again with the active classifier (all, or filtered like `results`).

    Earlier verdicts are kept as history; `fakewatch results --changed` lists images whose label changed.
    In distributed mode the work goes through the queue.
    """
    settings = _settings(ctx)
    intake, runtime = _embedded(settings) if settings.embedded else _distributed_intake(settings)
    queries = _queries()
    with intake.database.session() as session:
        ids = queries.image_ids(session, filters)
    with intake.database.session() as session, session.begin():
        queries.mark_pending(session, ids)
    for start in range(0, len(ids), settings.batch_size):
        intake.dispatcher.submit(ids[start:start + settings.batch_size])
    if runtime is not None:
        runtime.close()
    where = "classified" if settings.embedded else "queued for workers"
    click.echo(f"{len(ids):,} images {where} with the active classifier")


@cli.command("label")
@click.argument("reference")
@click.option("--fake", "verdict", flag_value="fake", help="The analyst judges the image AI-generated.")
@click.option("--real", "verdict", flag_value="real", help="The analyst judges the image authentic.")
@click.option("--note", help="Free text kept with the label.")
@click.option("--author", default=lambda: getpass.getuser(), show_default="your user name",
              help="Who made the judgement.")
@click.pass_context
@handled
def label_command(ctx: click.Context, reference: str, verdict: str | None, note: str | None, author: str) -> None:
    """Record an analyst's judgement on an image (by path or id)."""
    from fakewatch.db.session import Database

    if verdict is None:
        raise click.UsageError("say --fake or --real")
    settings = _settings(ctx)
    queries = _queries()
    with Database(settings.resolved_database_url).session() as session, session.begin():
        image = _find_image(session, reference)
        queries.add_label(session, image, verdict, author, note)
        click.echo(f"labelled {image.path} as {verdict} ({author})")


def _print_results(rows: Any, output_format: str) -> None:
    if output_format == "json":
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
    elif output_format == "paths":
        for row in rows:
            click.echo(row["path"])
    elif output_format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    else:
        click.echo(f"{'ID':>7}  {'LABEL':<9} {'P_FAKE':>6} {'CONF':>5}  {'STATUS':<7} {'CLASSIFIER':<24} PATH")
        for row in rows:
            p_fake = f"{row['p_fake']:.3f}" if row["p_fake"] is not None else "-"
            confidence = f"{row['confidence']:.2f}" if row["confidence"] is not None else "-"
            detail = f"  [{row['error_kind']}: {row['error']}]" if row["status"] == "error" else ""
            click.echo(f"{row['id']:>7}  {row['label'] or '-':<9} {p_fake:>6} {confidence:>5}  {row['status']:<7} "
                       f"{row['classifier'] or '-':<24} {row['path']}{detail}")


@cli.command()
@click.argument("reference")
@click.pass_context
@handled
def show(ctx: click.Context, reference: str) -> None:
    """Full record of one image (by path or id): verdict history, other paths with the same content, labels."""
    from fakewatch.db.session import Database

    settings = _settings(ctx)
    database = Database(settings.resolved_database_url)
    queries = _queries()
    with database.session() as session:
        image = _find_image(session, reference)
        click.echo(json.dumps(queries.image_record(session, image), indent=2, sort_keys=True))


@cli.command()
@_format_option(("text", "json"), "text")
@click.pass_context
@handled
def stats(ctx: click.Context, output_format: str) -> None:
    """Counts by status, verdict label, error kind and classifier version."""
    from fakewatch.db.session import Database

    settings = _settings(ctx)
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        numbers = _queries().stats(session)
    if output_format == "json":
        click.echo(json.dumps(numbers, indent=2, sort_keys=True))
        return
    click.echo(f"images: {numbers['images']:,} ({numbers['contents']:,} distinct contents, "
               f"{numbers['deleted']:,} deleted)")
    for title, key in (("status", "by_status"), ("latest verdicts", "by_label"), ("errors", "by_error_kind"),
                       ("verdicts by classifier", "verdicts_by_classifier")):
        items = ", ".join(f"{name}: {count:,}" for name, count in sorted(numbers[key].items(), key=str))
        click.echo(f"{title}: {items or '-'}")


# --- database ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
@handled
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the newest version."""
    from fakewatch.db.session import make_engine, upgrade

    settings = _settings(ctx)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    click.echo(f"database is current: {engine.url.render_as_string(hide_password=True)}")


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
