"""Distributed-mode commands: `sweep`, `worker` and `status` (`enqueue` shares `scan`'s path)."""

from __future__ import annotations

import json
import os
import sys

import click

from fakewatch.cli.base import cli, command_settings, format_option, open_database, open_mode, require_broker
from fakewatch.errors import FakewatchError

# --- distributed mode -------------------------------------------------------------------------------


@cli.command()
@click.option("--older-than", type=float, help="Seconds pending since queued. [FAKEWATCH_SWEEP_AFTER]")
@click.pass_context
def sweep(ctx: click.Context, older_than: float | None) -> None:
    """Queue again images left pending (lost message, killed worker). Safe to run on a schedule."""
    settings = command_settings(ctx, sweep_after=older_than)
    require_broker(settings)
    with open_mode(settings) as mode:
        count = mode.dispatcher.sweep()
    click.echo(f"re-queued {count:,} pending images")


@cli.command()
@click.option("--queues", default="cpu", show_default=True,
              help="Comma-separated queues to consume: cpu, gpu, training.")
@click.option("--concurrency", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0: one per CPU core. Each process's lite runtime computes with "
                   "cores / N threads (FAKEWATCH_RUNTIME_THREADS overrides it); see the README.")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork", show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--beat", is_flag=True, help="Also run the scheduler for refreshes every refresh_interval seconds "
                                           "(run it in exactly one worker).")
@click.option("--restart/--no-restart", default=True, show_default=True,
              help="Run the consumer in a child process and start it again after any exit it was not asked for "
                   "(broker error, crash, kill), backing off as retry_max_delay says.")
@click.pass_context
def worker(ctx: click.Context, queues: str, concurrency: int, pool: str, loglevel: str, beat: bool,
           restart: bool) -> None:
    """Run a Celery worker that classifies queued batches (distributed mode).

    The classifier is loaded lazily in each worker process and reused; it picks up the settings
    (database, classifier, broker) from the environment like every other command. SIGTERM or Ctrl-C
    stops it after the batches in hand (a warm shutdown).
    """
    settings = command_settings(ctx)
    require_broker(settings)
    if not concurrency:
        from fakewatch.config import cores

        concurrency = cores()
    if beat and not settings.refresh_interval:
        raise FakewatchError("--beat schedules refreshes, but refresh_interval is 0 (off); "
                             "set FAKEWATCH_REFRESH_INTERVAL")
    if restart:
        from fakewatch.worker.supervisor import Supervisor, consumer_command, consumer_environment

        options = [f"--queues={queues}", f"--concurrency={concurrency}", f"--pool={pool}", f"--loglevel={loglevel}",
                   *(["--beat"] if beat else [])]
        supervisor = Supervisor(consumer_command(sys.executable, ctx.obj.get("verbose", 0), options),
                                settings.retry_delay, env=consumer_environment(ctx.obj["overrides"]))
        ctx.exit(supervisor.run())

    from fakewatch.worker.app import configure, run_worker, worker_settings

    app = configure(worker_settings(settings, concurrency, pool))
    arguments = ["worker", f"--queues={queues}", f"--concurrency={concurrency}", f"--pool={pool}",
                 f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
                 f"--hostname=fakewatch-{pool}-%h-{os.getpid()}"]
    if beat:
        arguments.append("--beat")
    ctx.exit(run_worker(app, arguments))


@cli.command()
@format_option(("text", "json"), "text")
@click.pass_context
def status(ctx: click.Context, output_format: str) -> None:
    """Queue depths, workers online, image counts and recent throughput."""
    from fakewatch.status import status as current_status

    settings = command_settings(ctx)
    report = current_status(settings, open_database(settings))
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
