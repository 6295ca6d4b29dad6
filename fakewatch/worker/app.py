"""The Celery app, configured from Settings.

JSON only (pickle refused), late acknowledgement with redelivery when a worker dies, a prefetch of one
task per process (each task already carries a batch of ids), a Redis visibility timeout longer than the
hard time limit, separate ``cpu`` and ``gpu`` queues, and a ``training`` queue for refreshes (scheduled
by Celery beat every ``refresh_interval`` seconds when that is set; off by default).
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from fakewatch.config import Settings

CLASSIFY_TASK = "fakewatch.classify"
REFRESH_TASK = "fakewatch.refresh"
QUEUES = ("cpu", "gpu", "training")

app = Celery("fakewatch", include=["fakewatch.worker.tasks"])


def configure(settings: Settings) -> Celery:
    """Point the app at the broker and apply fakewatch's task policy."""
    app.conf.update(
        broker_url=settings.broker_url,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # outcomes live in the database, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # keep reconnecting through a broker restart
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=settings.queue,
        task_routes={REFRESH_TASK: {"queue": "training"}},  # a refresh never stalls classification
        beat_schedule=({"refresh": {"task": REFRESH_TASK, "schedule": settings.refresh_interval,
                                    "options": {"queue": "training"}}} if settings.refresh_interval else {}),
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # for Flower and `fakewatch status`
        task_send_sent_event=True,
    )
    app.conf.fakewatch_settings = settings
    return app
