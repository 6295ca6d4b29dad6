"""Every fakewatch command; the only package that prints or exits.

    base         the `fakewatch` group, global options, settings, error handling, `settings`, `db upgrade`
    training     train, evaluate, refresh, classifiers list|show|activate
    scanning     scan, watch
    distributed  enqueue, sweep, worker, status
    querying     results, rescan, label, show, stats
    serving      serve (the web console and HTTP API)
"""

import logging
import os
import sys

from fakewatch.cli import distributed, querying, scanning, serving, training  # noqa: F401  registers the commands
from fakewatch.cli.base import cli, close_databases


def main() -> None:
    """The console script. A short command that does not classify (see ``QUICK_COMMANDS``) leaves without
    the interpreter's teardown, once its output is flushed and its database connections are closed: tearing
    down SQLAlchemy's module graph costs about a sixth of such a command's run."""
    obj = {"fast_exit": True}
    try:
        cli(obj=obj)
    except SystemExit as exc:
        if obj.get("quick"):
            _leave_now(exc.code)
        raise


def _leave_now(code: object) -> None:
    status = code if isinstance(code, int) else 0 if code is None else 1
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
    close_databases()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):  # a reader that went away (`| head`) or a closed stream
            status = status or 1
    os._exit(status)


__all__ = ["cli", "main"]
