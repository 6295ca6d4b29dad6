"""The worker's actions sweep: verdict actions a killed worker left running are found and retried once.

An ``fakewatch.act`` task is acknowledged when a worker takes it, so a worker killed mid-hook leaves no
message to redeliver; its claim stays ``running`` in the database. Every ``sweep_interval`` seconds (and once
when the worker is ready) the consumer process reclaims the claims running longer than their action may take
(:meth:`fakewatch.actions.VerdictActions.sweep`) and queues them again. Sweeps in several workers at once
are safe: each claim is reclaimed by one.
"""

from __future__ import annotations

import logging
import threading

from fakewatch.actions import VerdictActions, configured
from fakewatch.config import Settings

log = logging.getLogger(__name__)


class ActionSweeper:
    """A daemon thread that sweeps verdict actions every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, settings: Settings, interval: float) -> None:
        self.settings = settings
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="actions-sweep", daemon=True)

    @classmethod
    def wanted(cls, settings: Settings) -> bool:
        return bool(configured(settings)) and settings.sweep_interval > 0 and not settings.embedded

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _loop(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        from fakewatch.db.session import Database
        from fakewatch.errors import FakewatchError

        database: Database | None = None
        actions: VerdictActions | None = None
        while True:
            try:
                if actions is None:
                    database = Database(self.settings.resolved_database_url, auto_upgrade=False)
                    actions = VerdictActions(self.settings, database)  # its first sweep runs here
                else:
                    actions.sweep()
            except (SQLAlchemyError, FakewatchError) as exc:  # a database outage: the next round tries again
                log.warning("verdict actions sweep failed: %s", exc)
            if self.stopping.wait(self.interval):
                break
        if actions is not None:
            actions.close(0)
        if database is not None:
            database.dispose()
