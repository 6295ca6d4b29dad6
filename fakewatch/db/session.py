"""Engines, sessions and schema upgrades.

SQLite (the embedded default) runs in WAL mode with a busy timeout so the watcher, a scan and queries
can share one file. Any SQLAlchemy URL works; PostgreSQL is the choice for distributed mode.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from fakewatch.errors import ConfigError
from fakewatch.redact import mask_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision. Checking a database against it needs one query and no Alembic import
# (a test keeps it equal to the head of migrations/versions); Alembic itself loads only to upgrade.
SCHEMA_HEAD = "0006"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the folder of a SQLite file and sets its pragmas."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database_url {mask_url(url)!r} is not a SQLAlchemy URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except Exception as exc:  # a missing driver surfaces as ImportError/NoSuchModuleError
        raise ConfigError(f"cannot use database {parsed.render_as_string(hide_password=True)}: {exc}") from exc


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migration_head() -> str | None:
    """The head revision of the migration scripts, as Alembic sees it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(make_engine("sqlite://"))).get_current_head()


def is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError) as exc:
        if _missing_table(exc):
            return False  # a new, empty database
        raise
    return revision == SCHEMA_HEAD


def _missing_table(exc: Exception) -> bool:
    message = str(getattr(exc, "orig", exc)).lower()
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def connection_error(engine: Engine, exc: OperationalError) -> ConfigError:
    """What stopped a connection, in one line, with what to do when the server says that the database
    or the role (user) in the URL does not exist."""
    url = engine.url
    where = url.render_as_string(hide_password=True)
    message = " ".join(str(exc.orig).split())
    host = f" -h {url.host}" if url.host else ""
    if re.search(r'database "[^"]*" does not exist', message):
        return ConfigError(f"database {url.database!r} does not exist on the server of {where}: create it "
                           f"(createdb{host} -O {url.username or 'OWNER'} {url.database}) and run "
                           f"`fakewatch db upgrade`")
    if re.search(r'role "[^"]*" does not exist', message):
        return ConfigError(f"role {url.username!r} does not exist on the server of {where}: create it "
                           f"(createuser{host} --pwprompt {url.username}) and give it the database "
                           f"(createdb{host} -O {url.username} {url.database or url.username})")
    return ConfigError(f"cannot connect to the database {where}: {message}")


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command

    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise connection_error(engine, exc) from exc
    try:
        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as exc:
        raise ConfigError(f"cannot reach or migrate the database: {exc.orig}") from exc


class Database:
    """An engine plus a session factory for one database URL."""

    def __init__(self, url: str, auto_upgrade: bool | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if auto_upgrade is None:
            auto_upgrade = self.engine.dialect.name == "sqlite"
        try:
            current = is_current(self.engine)
        except OperationalError as exc:
            raise connection_error(self.engine, exc) from exc
        if not current:
            if not auto_upgrade:
                raise ConfigError("the database schema is not current; run `fakewatch db upgrade`")
            upgrade(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.sessions()

    def ping(self) -> None:
        """Run a trivial query; raises if the database cannot be reached."""
        with self.session() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
