"""The one place that decides between the two modes and builds what a command needs for it.

    embedded     (no ``broker_url``) intake records files; InProcess classifies them in this process, and
                 verdict actions run here (the hooks on a bounded pool)
    distributed  intake records files; QueueDispatcher sends their ids to Celery workers, which queue the
                 verdict actions as ``fakewatch.act`` tasks

Every command that takes in or re-classifies images (`scan`, `enqueue`, `watch`, `rescan`, `sweep`) opens a
:class:`Mode` with :func:`open_mode` and closes it when done. The distributed mode imports neither the
classifier nor TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from fakewatch.actions import VerdictActions, configured
from fakewatch.config import Settings
from fakewatch.db.session import Database
from fakewatch.intake.dispatch import Dispatcher
from fakewatch.intake.filters import FileFilter
from fakewatch.intake.record import Intake
from fakewatch.redact import mask_url
from fakewatch.registry import Registry

if TYPE_CHECKING:
    from fakewatch.classify.runtime import Runtime
    from fakewatch.intake.distributed import QueueDispatcher


@dataclass
class Mode:
    """Intake plus the dispatcher behind it: the in-process ``runtime`` (embedded) or the ``queue``
    (distributed)."""

    settings: Settings
    database: Database
    intake: Intake
    dispatcher: Dispatcher
    runtime: Runtime | None = None
    queue: QueueDispatcher | None = None

    @property
    def embedded(self) -> bool:
        return self.runtime is not None

    def describe(self) -> str:
        return "embedded" if self.embedded else f"distributed via {mask_url(self.settings.broker_url)}"

    @property
    def queued(self) -> int:
        """Image ids sent to the queue so far (always 0 in embedded mode)."""
        return self.queue.sent if self.queue is not None else 0

    def warm_up(self) -> None:
        """Load the classifiers now (embedded), so the first file does not wait for them."""
        if self.runtime is not None:
            for _, classifier in self.runtime.router.routes:
                _ = classifier.loaded

    def close(self) -> None:
        self.dispatcher.close()
        self.database.dispose()

    def __enter__(self) -> Mode:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def open_mode(settings: Settings, database: Database | None = None) -> Mode:
    """The mode ``settings`` ask for: embedded without a broker URL, distributed with one."""
    database = database or Database(settings.resolved_database_url)
    registry = Registry(settings)
    file_filter = FileFilter(settings.include, settings.exclude)
    if settings.embedded:
        from fakewatch.classify.runtime import Runtime
        from fakewatch.intake.embedded import InProcess

        registry.resolve_all()  # fail fast, before any file is touched, when a classifier is missing or invalid
        runtime = Runtime(settings, database, registry)
        dispatcher = InProcess(runtime)
        intake = Intake(settings, database, lambda: runtime.router.versions, dispatcher, file_filter,
                        keep_bytes=True)
        dispatcher.preloaded = intake.recent  # each file is read once: classification reuses intake's bytes
        intake.on_done = lambda ids: runtime.actions.after(ids, runtime.router.versions)
        return Mode(settings, database, intake, dispatcher, runtime)
    from fakewatch.intake.distributed import QueueDispatcher

    queue = QueueDispatcher(settings, database)
    registry.resolve_all()  # fail fast on a missing or invalid classifier, as embedded mode does
    intake = Intake(settings, database, registry.in_use, queue, file_filter)
    if configured(settings):
        # for copies of content the workers already judged; its first sweep queues again the actions a
        # killed worker left unfinished, and so does every later sweep of the watcher or `fakewatch sweep`
        actions = VerdictActions(settings, database)
        intake.on_done = lambda ids: actions.after(ids, registry.in_use())
        queue.sweeping.append(actions.sweep)
        queue.closing.append(actions.close)
    return Mode(settings, database, intake, queue, queue=queue)
