"""Celery tasks: thin wrappers over :class:`fakewatch.classify.runtime.Runtime`.

    fakewatch.classify   a batch of image ids (``cpu`` or ``gpu`` queue)
    fakewatch.act        one image's claimed verdict actions: action ids and the claim's token (``actions``)
    fakewatch.refresh    retrain when enough new labels arrived (``training``)

The runtime (database engine and classifier) is created lazily in each worker process on its first task,
never in the parent before forking: TensorFlow and CUDA do not survive a fork.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.exceptions import Reject
from sqlalchemy.exc import DBAPIError, OperationalError

from fakewatch.classify.runtime import Runtime
from fakewatch.config import Settings, load_settings
from fakewatch.errors import ConfigError
from fakewatch.queues import ACT_TASK, CLASSIFY_TASK, REFRESH_TASK
from fakewatch.worker.app import app

log = logging.getLogger(__name__)
MAX_RETRIES = 20
_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's runtime, built on first use (and rebuilt if this process was forked after)."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        from fakewatch.db.session import Database
        from fakewatch.registry import Registry

        settings: Settings = app.conf.get("fakewatch_settings") or load_settings()
        try:
            database = Database(settings.resolved_database_url, auto_upgrade=False)
        except ConfigError as exc:
            if isinstance(exc.__cause__, OperationalError):
                raise exc.__cause__ from exc  # database unreachable: transient, the task retries
            raise
        _runtime = (os.getpid(), Runtime(settings, database, Registry(settings)))
    return _runtime[1]


def _valid_ids(image_ids: Any) -> list[int]:
    if not isinstance(image_ids, list) or not all(type(item) is int for item in image_ids):
        raise Reject(f"{CLASSIFY_TASK} takes a list of integer image ids, got {image_ids!r:.200}", requeue=False)
    return image_ids


def _transient(exc: Exception) -> bool:
    """A database that is down or restarting (worth a retry), not a bug or bad data."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


@app.task(name=CLASSIFY_TASK, bind=True, max_retries=MAX_RETRIES)
def classify(self: Any, image_ids: Any) -> dict[str, int]:
    """Classify a batch of image ids; safe to run twice (one verdict per content and classifier).

    A database outage retries the task, backing off as the ``retry_max_delay`` setting says; after
    ``MAX_RETRIES`` the ids stay pending in the database and the sweeper queues them again."""
    ids = _valid_ids(image_ids)
    try:
        outcome = runtime().classify_ids(ids)
    except DBAPIError as exc:
        if _transient(exc):
            settings: Settings = app.conf.get("fakewatch_settings") or load_settings()
            delay = settings.retry_delay(self.request.retries + 1)
            log.warning("database unavailable, retrying batch of %d in %.0f s: %s", len(ids), delay, exc)
            raise self.retry(exc=exc, countdown=delay) from exc
        raise
    log.info("batch of %d: %d classified, %d already done, %d errors, %d skipped", len(ids), outcome.classified,
             outcome.already_done, outcome.errors, outcome.skipped)
    return {"classified": outcome.classified, "already_done": outcome.already_done, "errors": outcome.errors}


# Acknowledged on receipt, not after: a hook has side effects, so a message redelivered after a worker died
# mid-hook must not run it again by itself. The claim row is the record: a claim left running past its time
# is retried once by the actions sweep (fakewatch.worker.sweeper), and a stale message finds its token gone.
@app.task(name=ACT_TASK, acks_late=False)
def act(action_ids: Any, token: Any) -> dict[str, int]:
    """Run one image's claimed verdict actions, in order (the quarantine move before the hooks)."""
    if not isinstance(action_ids, list) or not all(type(item) is int for item in action_ids) or \
            not isinstance(token, str):
        raise Reject(f"{ACT_TASK} takes a list of integer action ids and a claim token, got "
                     f"{action_ids!r:.100}, {token!r:.100}", requeue=False)
    ran = runtime().actions.run_claimed(action_ids, token)
    if ran < len(action_ids):
        log.info("%d of %d verdict actions were no longer held by this claim; not run", len(action_ids) - ran,
                 len(action_ids))
    return {"ran": ran}


@app.task(name=REFRESH_TASK, acks_late=False)  # hours long: not redelivered halfway, the next run catches up
def refresh() -> dict[str, str | None]:
    """Scheduled refresh: retrain if enough new labels arrived, gate, promote or reject."""
    from fakewatch.training.refresh import refresh_domains

    worker_runtime = runtime()
    outcomes = refresh_domains(worker_runtime.settings, worker_runtime.database, worker_runtime.registry)
    for outcome in outcomes:
        log.info("refresh %s (%s): %s", outcome.status, outcome.domain, outcome.reason)
    if len(outcomes) == 1:
        return {"status": outcomes[0].status, "reason": outcomes[0].reason, "candidate": outcomes[0].candidate}
    return {f"{outcome.domain}.{key}": value for outcome in outcomes
            for key, value in (("status", outcome.status), ("reason", outcome.reason),
                               ("candidate", outcome.candidate))}
