"""The Celery app the workers run, configured from Settings on top of the shared queue contract.

On top of :func:`fakewatch.broker.celery_options`: late acknowledgement with redelivery when a worker dies,
a prefetch of one task per process (each task already carries a batch of ids), hard and soft time limits,
the ``cpu``, ``gpu`` and ``training`` queues, and refreshes on the ``training`` queue (scheduled by Celery
beat every ``refresh_interval`` seconds when that is set; off by default).
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Queue

from fakewatch.broker import QUEUES, REFRESH_TASK, TRAINING_QUEUE, celery_options
from fakewatch.config import Settings, cores

app = Celery("fakewatch", include=["fakewatch.worker.tasks"])


class Consumer(CeleryConsumer):
    """Celery's consumer, reconnecting to a lost broker on fakewatch's backoff: 1 s, then 2 s more after
    each failed attempt, up to ``retry_max_delay`` (Celery's own steps are fixed, 2 s up to 30 s)."""

    def ensure_connected(self, conn: Any) -> Any:
        settings: Settings = self.app.conf.fakewatch_settings
        conn.ensure_connection = functools.partial(conn.ensure_connection, interval_start=1.0, interval_step=2.0,
                                                   interval_max=settings.retry_max_delay)
        return super().ensure_connected(conn)


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
