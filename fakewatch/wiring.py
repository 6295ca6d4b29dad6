"""Composition root: builds the object graph for each mode from Settings.

Embedded: SQLite (or any database), the classifier in this process, intake dispatching in-process.
Distributed: intake records files and sends their ids to the queue; Celery workers classify.
"""

from __future__ import annotations

from fakewatch.config import Settings
from fakewatch.db.session import Database
from fakewatch.registry import Registry
from fakewatch.watcher.decisions import FileFilter
from fakewatch.watcher.enqueue import QueueDispatcher
from fakewatch.watcher.intake import Intake
from fakewatch.worker.runtime import InProcess, Runtime


def embedded(settings: Settings, database: Database | None = None) -> tuple[Intake, Runtime]:
    """Intake whose dispatcher classifies in-process, and the runtime behind it (close it when done)."""
    database = database or Database(settings.resolved_database_url)
    registry = Registry(settings)
    registry.resolve()  # fail fast, before any file is touched, when the classifier is missing or invalid
    runtime = Runtime(settings, database, registry)
    intake = Intake(settings, database, lambda: runtime.classifier.version, InProcess(runtime),
                    FileFilter(settings.include, settings.exclude))
    return intake, runtime


def distributed(settings: Settings, database: Database | None = None) -> tuple[Intake, QueueDispatcher]:
    """Intake that records files and queues their ids for Celery workers (no TensorFlow here)."""
    database = database or Database(settings.resolved_database_url)
    registry = Registry(settings)
    dispatcher = QueueDispatcher(settings, database)
    intake = Intake(settings, database, lambda: registry.resolve().version, dispatcher,
                    FileFilter(settings.include, settings.exclude))
    return intake, dispatcher
