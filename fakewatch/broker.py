"""The Celery side of the queue contract: the options senders and workers share, and a sending app.

Task and queue names live in :mod:`fakewatch.queues`; the watcher, `enqueue` and `sweep` send through
:class:`~fakewatch.intake.distributed.QueueDispatcher`, `status` inspects queues through :func:`sender`,
and :mod:`fakewatch.worker.app` builds the worker from :func:`celery_options`. Importing this module imports
neither Celery nor TensorFlow (Celery is imported when a sender is built), so `fakewatch settings` and the
query commands stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fakewatch.config import Settings

if TYPE_CHECKING:
    from celery import Celery


def send_retry_policy(settings: Settings) -> dict[str, float]:
    """How long one send keeps trying a broker that does not answer: a few seconds, not minutes; the rows
    stay pending and the dispatcher backs off before trying again (``retry_max_delay``)."""
    return {"max_retries": 3, "interval_start": 0.5, "interval_step": 1, "interval_max": settings.retry_max_delay}


def celery_options(settings: Settings) -> dict[str, Any]:
    """The Celery configuration senders and workers share: broker, JSON only, visibility timeout."""
    return {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout},
    }


def sender(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name and inspects queues (it registers no tasks)."""
    from celery import Celery

    app = Celery("fakewatch-sender", set_as_current=False)
    app.conf.update(celery_options(settings))
    return app
