"""Commands that take files in: `scan` and `enqueue` (one path: record, then classify or queue) and `watch`."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from fakewatch.cli.base import EXIT_NOT_QUEUED, cli, command_settings, format_option, open_mode, require_broker
from fakewatch.config import Settings
from fakewatch.errors import FakewatchError
from fakewatch.names import shown
from fakewatch.quarantine import check_quarantine
from fakewatch.redact import mask_url
from fakewatch.values import VerdictLabel, choices


def _emit_rows(rows: list[dict[str, Any]], output_format: str) -> None:
    """JSON: every record. Text: only errors, on stderr (the summary lists totals)."""
    for row in rows:
        if output_format == "json":
            click.echo(json.dumps(row, sort_keys=True))
        elif row["status"] == "error":
            click.echo(f"error  {row['error_kind']:<11} {shown(row['path'])}: {shown(row['error'])}", err=True)


class QueueNotReached(FakewatchError):
    """Exit code 3: the files were recorded, but the broker took none or only some of them."""

    exit_code = EXIT_NOT_QUEUED


def _intake_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `scan` and `enqueue` share."""
    for option in reversed([
        click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True)),
        click.option("--force", is_flag=True, help="Re-classify content the active classifier has already seen."),
        click.option("--include", multiple=True, help="Only file names matching this glob (repeatable)."),
        click.option("--exclude", multiple=True, help="Skip file names or paths matching this glob (repeatable)."),
    ]):
        command = option(command)
    return command


def _take_in(ctx: click.Context, settings: Settings, paths: tuple[str, ...], force: bool, output_format: str,
             verb: str) -> tuple[Any, int]:
    """Record every file under ``paths`` and classify or queue it, with a progress bar on stderr.
    Returns the scan summary and how many ids were sent to the queue."""
    from fakewatch.intake.scan import scan as run_scan

    check_quarantine(settings, paths)
    with open_mode(settings) as mode:
        total = sum(1 for _ in mode.intake.walk(paths))
        hidden = ctx.obj["quiet"] or output_format != "text"
        progress_bar: Any = click.progressbar(length=total, label=verb, file=sys.stderr, show_eta=True,
                                              show_percent=True, hidden=hidden)
        with progress_bar as bar:
            started = time.perf_counter()

            def progress(done: int) -> None:
                bar.update(done)
                elapsed = time.perf_counter() - started
                bar.label = f"{verb} {bar.pos / elapsed:,.0f} files/s" if elapsed > 0 else verb

            summary = run_scan(mode.intake, paths, force, lambda rows: _emit_rows(rows, output_format), progress,
                               every_row=output_format == "json")
        if mode.intake.unsent:
            raise QueueNotReached(f"{mode.intake.unsent:,} images were recorded but could not be queued (the "
                                  f"broker at {mask_url(settings.broker_url)} is unreachable); they stay pending "
                                  f"and `fakewatch sweep` or a running watcher queues them once it is back")
        return summary, mode.queued


@cli.command()
@_intake_options
@format_option(("text", "json"), "text")
@click.pass_context
def scan(ctx: click.Context, paths: tuple[str, ...], force: bool, output_format: str, include: tuple[str, ...],
         exclude: tuple[str, ...]) -> None:
    """Classify every image under PATHS (files or folders, recursive) and record the verdicts.

    Content already classified by the active classifier is skipped unless --force. With a broker
    configured the images are queued for workers instead (as `enqueue` does). Exit code 0 when the
    scan ran (files with errors are recorded, not fatal); 2 on a setup error.
    """
    settings = command_settings(ctx, include=include or None, exclude=exclude or None)
    summary, _ = _take_in(ctx, settings, paths, force, output_format, "scanning")
    if not ctx.obj["quiet"] and output_format == "text":
        _print_scan_summary(summary, settings)


@cli.command()
@_intake_options
@click.pass_context
def enqueue(ctx: click.Context, paths: tuple[str, ...], force: bool, include: tuple[str, ...],
            exclude: tuple[str, ...]) -> None:
    """Record every image under PATHS and queue their ids for workers (distributed mode, streaming)."""
    settings = command_settings(ctx, include=include or None, exclude=exclude or None)
    require_broker(settings)
    summary, sent = _take_in(ctx, settings, paths, force, "text", "enqueueing")
    if not ctx.obj["quiet"]:
        click.echo(f"{summary.files:,} files recorded in {summary.seconds:.1f} s; {sent:,} queued "
                   f"for workers on queue {settings.queue!r}; "
                   f"already classified: {summary.by_status.get('done', 0):,}; "
                   f"errors: {summary.by_status.get('error', 0):,}")


def _print_scan_summary(summary: Any, settings: Settings) -> None:
    click.echo(f"{summary.files:,} files in {summary.seconds:.1f} s ({summary.rate:,.0f} files/s)")
    labels = ", ".join(f"{summary.by_label[name]:,} {name}" for name in choices(VerdictLabel))
    click.echo(f"  verdicts: {labels}")
    if summary.by_status.get("pending"):
        click.echo(f"  queued for workers: {summary.by_status['pending']:,}")
    if summary.by_error:
        click.echo("  errors: " + ", ".join(f"{count:,} {kind}" for kind, count in sorted(summary.by_error.items())))
    click.echo(f"  database: {mask_url(settings.resolved_database_url)}")
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
def watch(ctx: click.Context, folders: tuple[str, ...], polling: bool | None, interval: float | None,
          stability_delay: float | None, rescan_interval: float | None, include: tuple[str, ...],
          exclude: tuple[str, ...]) -> None:
    """Watch FOLDERS (recursively) and classify new images as they arrive. Stop with Ctrl-C or SIGTERM.

    On start it catches up on files that arrived while it was stopped. In embedded mode it classifies
    in-process; with a broker configured it records files and queues their ids for workers, and
    re-queues ids lost to a broker restart or a dead worker every sweep_interval seconds.
    """
    import signal

    from fakewatch.db.results import rows_for_ids
    from fakewatch.watcher.observer import Watcher

    settings = command_settings(ctx, polling=polling, poll_interval=interval, stability_delay=stability_delay,
                                rescan_interval=rescan_interval, include=include or None, exclude=exclude or None)
    log = logging.getLogger("fakewatch.watch")
    check_quarantine(settings, folders)
    with open_mode(settings) as mode:
        mode.warm_up()  # load the classifier before the first file arrives: low first-verdict latency

        def report(recorded: dict[str, tuple[int, str]]) -> None:
            ids = [image_id for image_id, _ in recorded.values()]
            with mode.database.session() as session:
                for row in rows_for_ids(session, ids):
                    if row["status"] == "error":
                        log.warning("%s: %s (%s)", row["path"], row["error"], row["error_kind"])
                    elif row["label"]:
                        log.info("%s: %s (p_fake %.3f)", row["path"], row["label"], row["p_fake"])

        watcher = Watcher(mode.intake, list(folders), on_batch=report,
                          sweep_interval=0.0 if mode.embedded else settings.sweep_interval)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: watcher.stop.set())
        log.info("watching %s (%s mode, %s)", ", ".join(folders), mode.describe(),
                 "polling" if settings.polling else "OS events")
        watcher.run()
