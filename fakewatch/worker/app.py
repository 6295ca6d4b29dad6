"""The Celery app the workers run, configured from Settings on top of the shared queue contract.

On top of :func:`fakewatch.broker.celery_options`: late acknowledgement with redelivery when a worker dies,
a prefetch of one task per process (each task already carries a batch of ids), hard and soft time limits,
the ``cpu``, ``gpu``, ``training`` and ``actions`` queues (every worker consumes ``actions`` beside the queues
it is given), refreshes on the ``training`` queue (scheduled by Celery beat every ``refresh_interval`` seconds
when that is set; off by default), and the verdict actions sweep (:mod:`fakewatch.worker.sweeper`) in the
consumer process while it runs.
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import sys
import threading
from typing import Any

from celery import Celery, signals
from celery.apps.worker import Worker as CeleryWorker
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Queue

from fakewatch.broker import celery_options
from fakewatch.config import Settings, cores
from fakewatch.queues import ACTIONS_QUEUE, QUEUES, REFRESH_TASK, TRAINING_QUEUE
from fakewatch.worker.sweeper import ActionSweeper

app = Celery("fakewatch", include=["fakewatch.worker.tasks"])
log = logging.getLogger(__name__)
FAILED_STOP_GRACE = 30.0  # seconds a consumer stopping on an unrecoverable error gets before it exits at once


class Consumer(CeleryConsumer):
    """Celery's consumer, reconnecting to a lost broker on fakewatch's backoff: 1 s, then 2 s more after
    each failed attempt, up to ``retry_max_delay`` (Celery's own steps are fixed, 2 s up to 30 s)."""

    def ensure_connected(self, conn: Any) -> Any:
        settings: Settings = self.app.conf.fakewatch_settings
        conn.ensure_connection = functools.partial(conn.ensure_connection, interval_start=1.0, interval_step=2.0,
                                                   interval_max=settings.retry_max_delay)
        return super().ensure_connected(conn)


class Worker(CeleryWorker):
    """Celery's worker, bounded when it stops on an unrecoverable error.

    Celery's stop after such an error is a warm one: it waits for its pool. When the error came from the
    pool's own result pipe (``UnpicklingError: invalid load key`` when a broker reconnect cut a result message
    in half), that wait can last for ever, and a consumer that never exits is never started again. So the
    stop gets ``FAILED_STOP_GRACE`` seconds; then the pool's processes are killed and the consumer exits
    with the error's code, and the supervisor starts a fresh one. A stop that was asked for (SIGTERM,
    Ctrl-C) keeps Celery's patience for the batches in hand."""

    def setup_queues(self, include: Any, exclude: Any = None) -> None:
        # verdict actions are short and owed promptly: every worker takes them, whatever it classifies
        if include:
            named = include.split(",") if isinstance(include, str) else list(include)
            include = [*named, *([ACTIONS_QUEUE] if ACTIONS_QUEUE not in named else [])]
        super().setup_queues(include, exclude)

    def stop(self, in_sighandler: bool = False, exitcode: int | None = None) -> None:
        # Celery stops from inside its handler of the error; a stop that was asked for comes from a
        # SystemExit (SIGTERM, and Ctrl-C, whose exit code is also 1) or a KeyboardInterrupt, not an Exception
        if exitcode and isinstance(sys.exc_info()[1], Exception):
            exit_later(exitcode, FAILED_STOP_GRACE)
        super().stop(in_sighandler=in_sighandler, exitcode=exitcode)


def exit_later(code: int, grace: float) -> None:
    """Exit this process with ``code`` in ``grace`` seconds, unless it has ended by then; its pool's
    processes are killed first, so none is left behind."""

    def give_up() -> None:
        log.critical("worker did not stop within %.0f s of an unrecoverable error; its pool is killed and it "
                     "exits with code %d", grace, code)
        from billiard.process import active_children

        for child in active_children():
            try:
                os.kill(child.pid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):  # gone already, or never started (pid None)
                pass
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(code)

    timer = threading.Timer(grace, give_up)
    timer.daemon = True
    timer.start()


_sweepers: list[ActionSweeper] = []


@signals.worker_ready.connect
def _start_sweeper(sender: Any = None, **_: Any) -> None:
    settings: Settings | None = app.conf.get("fakewatch_settings")
    if settings is not None and ActionSweeper.wanted(settings):
        sweeper = ActionSweeper(settings, settings.sweep_interval)
        _sweepers.append(sweeper)
        sweeper.start()


@signals.worker_shutdown.connect
def _stop_sweeper(sender: Any = None, **_: Any) -> None:
    while _sweepers:
        _sweepers.pop().stop()


def worker_settings(settings: Settings, concurrency: int, pool: str) -> Settings:
    """``settings`` for a worker of ``concurrency`` processes (or threads): with ``runtime_threads`` automatic,
    the cores are shared out, so N runtimes do not each start one thread per core and fight over them."""
    if settings.runtime_threads or pool == "solo":
        return settings
    return dataclasses.replace(settings, runtime_threads=max(1, cores() // max(1, concurrency)))


def configure(settings: Settings) -> Celery:
    """Point the app at the broker and apply fakewatch's task policy."""
    app.conf.update(
        **celery_options(settings),
        task_ignore_result=True,  # outcomes live in the database, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_connection_max_retries=None,  # keep reconnecting through a broker restart
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=settings.queue,
        task_routes={REFRESH_TASK: {"queue": TRAINING_QUEUE}},  # a refresh never stalls classification
        beat_schedule=({"refresh": {"task": REFRESH_TASK, "schedule": settings.refresh_interval,
                                    "options": {"queue": TRAINING_QUEUE}}} if settings.refresh_interval else {}),
        worker_consumer=f"{__name__}:Consumer",
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # for Flower and `fakewatch status`
        task_send_sent_event=True,
    )
    app.conf.fakewatch_settings = settings
    app.Worker = app.subclass_with_self(Worker)  # what `celery worker` runs: Celery's, bounded on failure
    return app


def run_worker(celery_app: Celery, arguments: list[str]) -> int:
    """Run ``celery worker`` in this process and return its exit code.

    ``Celery.worker_main`` drops the code, so a worker that stopped on an unrecoverable error would exit 0
    and look like one that was asked to stop."""
    from celery.bin.celery import celery as celery_command
    from click.exceptions import Exit

    celery_command.params[0].default = celery_app  # what Celery.start does: the --app option's default
    try:
        code = celery_command.main(args=arguments, standalone_mode=False)
    except Exit as exc:
        code = exc.exit_code
    finally:
        celery_command.params[0].default = None
    return code if isinstance(code, int) else 0
