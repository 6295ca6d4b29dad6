"""The `fakewatch` command group, its global options and what every command shares.

Commands parse arguments, build :class:`Settings` once, call library code and print. Errors are caught
once, by the group: a :class:`FakewatchError` from any command becomes a one-line message and exit code 2;
an interrupted command exits 130.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fakewatch.config import Settings, load_settings, setting_fields
from fakewatch.errors import FakewatchError
from fakewatch.names import shown
from fakewatch.redact import SafeFormatter, mask_secrets, mask_url

EXIT_SETUP_ERROR = 2
EXIT_NOT_QUEUED = 3  # enqueue/scan in distributed mode: recorded, but the broker could not be reached
EXIT_INTERRUPTED = 130
# Short commands that read or label and never classify. Run from the console script, they skip cyclic
# garbage collection (their imports build SQLAlchemy's object graph, which the collector walks again and
# again for nothing) and the interpreter's teardown.
QUICK_COMMANDS = frozenset({"results", "show", "stats", "status", "settings", "label"})
# settings whose empty value means a default worked out from others: the Settings property that holds it
RESOLVED_DEFAULTS = {"home": "home_path", "database_url": "resolved_database_url", "registry_dir": "registry_path",
                     "inbox_dir": "inbox_path"}
_opened: list[Any] = []  # databases opened by a quick command run from the console script


def command_settings(ctx: click.Context, **command_overrides: Any) -> Settings:
    overrides = {**ctx.obj["overrides"], **command_overrides}
    return load_settings(overrides)


class FakewatchGroup(click.Group):
    """The command group: turns a FakewatchError raised by any command (or sub-group) into a clean
    one-line message and exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FakewatchError as exc:
            message = re.sub(r"\s*\n\s*", " ", mask_secrets(str(exc)))  # drivers' multi-line messages
            click.echo(f"fakewatch: error: {shown(message)}", err=True)
            ctx.exit(getattr(exc, "exit_code", EXIT_SETUP_ERROR))
        except KeyboardInterrupt:
            click.echo("fakewatch: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


def _configure_logging(verbose: int, quiet: bool, level: str | None) -> None:
    if quiet:
        chosen = logging.ERROR
    elif verbose:
        chosen = logging.DEBUG
    else:
        chosen = getattr(logging, (level or "INFO").upper(), logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=chosen, handlers=[handler], force=True)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL", "alembic", "watchdog"):
        logging.getLogger(noisy).setLevel(max(chosen, logging.WARNING))


@click.group(cls=FakewatchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    if ctx.obj.get("fast_exit") and ctx.invoked_subcommand in QUICK_COMMANDS:
        gc.disable()
        ctx.obj["quick"] = True
    ctx.obj["overrides"] = {"home": home, "database_url": database_url, "classifier": classifier,
                            "broker_url": broker_url}
    ctx.obj["quiet"] = quiet
    ctx.obj["verbose"] = verbose
    try:
        level = load_settings(ctx.obj["overrides"]).log_level
    except FakewatchError:
        level = None  # reported properly by the command itself
    _configure_logging(verbose, quiet, level)


@cli.command("settings")
@click.pass_context
def settings_command(ctx: click.Context) -> None:
    """Show every setting, its resolved value and what it does."""
    settings = command_settings(ctx)
    for field in setting_fields():
        value = getattr(settings, field.name)
        if not value and field.name in RESOLVED_DEFAULTS:  # left empty: show what it resolves to
            value = str(getattr(settings, RESOLVED_DEFAULTS[field.name]))
        shown_value = mask_url(value) if field.name.endswith("_url") else value
        if field.name == "api_token" and value:
            shown_value = "***"
        click.echo(f"{field.name} = {shown_value!r}    [FAKEWATCH_{field.name.upper()}]")
        click.echo(f"    {field.metadata['help']}")
    click.echo(f"(database: {mask_url(settings.resolved_database_url)}; registry: {settings.registry_path})")


def format_option(choices: tuple[str, ...], default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--format", "output_format", type=click.Choice(choices), default=default, show_default=True,
                        help="Output format.")


def open_mode(settings: Settings) -> Any:
    """The embedded or distributed mode ``settings`` ask for (see :mod:`fakewatch.mode`)."""
    from fakewatch.mode import open_mode as open_for

    return open_for(settings)


def open_database(settings: Settings) -> Any:
    from fakewatch.db.session import Database

    database = Database(settings.resolved_database_url)
    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().obj.get("quick"):
        _opened.append(database)
    return database


def close_databases() -> None:
    """Close the connections of every database a command opened (the console script's quick exit)."""
    while _opened:
        _opened.pop().dispose()


def find_image(session: Any, reference: str) -> Any:
    """An image by id, by path as given, or by absolute path."""
    from fakewatch.db.results import find_image as find

    image = find(session, reference) or find(session, str(Path(reference).resolve()))
    if image is None:
        raise FakewatchError(f"no image {reference!r} in the database; scan it first")
    return image


def require_broker(settings: Settings) -> None:
    if settings.embedded:
        raise FakewatchError("this command needs a broker: set FAKEWATCH_BROKER_URL (e.g. redis://localhost:6379/0) "
                             "or pass --broker-url")


# --- database ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the newest version."""
    from fakewatch.db.session import make_engine, upgrade

    settings = command_settings(ctx)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    click.echo(f"database is current: {engine.url.render_as_string(hide_password=True)}")
