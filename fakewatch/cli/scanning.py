"""Commands that classify files in embedded or distributed mode: `scan` and `watch`."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import click

from fakewatch.cli.base import (
    cli,
    command_settings,
    distributed_mode,
    embedded_mode,
    format_option,
    handled,
    queries_module,
)
from fakewatch.config import Settings

# --- scanning and watching --------------------------------------------------------------------------


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
@format_option(("text", "json"), "text")
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
    settings = command_settings(ctx, include=include or None, exclude=exclude or None)
    intake, runtime = embedded_mode(settings) if settings.embedded else distributed_mode(settings)
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

    settings = command_settings(ctx, polling=polling, poll_interval=interval, stability_delay=stability_delay,
                         rescan_interval=rescan_interval, include=include or None, exclude=exclude or None)
    intake, runtime = embedded_mode(settings) if settings.embedded else distributed_mode(settings)
    if runtime is not None:
        _ = runtime.classifier  # load before the first file arrives: low first-verdict latency

    log = logging.getLogger("fakewatch.watch")

    def report(recorded: dict[str, tuple[int, str]]) -> None:
        ids = [image_id for image_id, _ in recorded.values()]
        with intake.database.session() as session:
            for row in queries_module().rows_for_ids(session, ids):
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
