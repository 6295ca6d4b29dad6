"""Every fakewatch command; the only package that prints or exits.

    base         the `fakewatch` group, global options, settings, error handling, `settings`, `db upgrade`
    training     train, evaluate, refresh, classifiers list|show|activate
    scanning     scan, watch
    distributed  enqueue, sweep, worker, status
    querying     results, rescan, label, show, stats
    serving      serve (the web console and HTTP API)
"""

from fakewatch.cli import distributed, querying, scanning, serving, training  # noqa: F401  registers the commands
from fakewatch.cli.base import cli


def main() -> None:
    cli(obj={})


__all__ = ["cli", "main"]
