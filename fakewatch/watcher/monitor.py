"""`fakewatch status`: what the queue, the workers and the database are doing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from fakewatch.config import Settings
from fakewatch.db import queries
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from fakewatch.watcher.enqueue import sender

QUEUES = ("cpu", "gpu", "training")
WINDOWS = {"1m": 1, "5m": 5, "15m": 15}


def _queue_depths(settings: Settings) -> dict[str, int | str]:
    app = sender(settings)
    depths: dict[str, int | str] = {}
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for name in QUEUES:
                depths[name] = channel.queue_declare(queue=name, passive=False, durable=True,
                                                     auto_delete=False).message_count
    except Exception as exc:  # the broker being down is a status, not a crash
        return {"error": f"broker unreachable: {exc}"}
    return depths


def _workers(settings: Settings) -> list[str]:
    try:
        replies = sender(settings).control.ping(timeout=1.0) or []
    except Exception:  # the broker being down is a status, not a crash
        return []
    return sorted(name for reply in replies for name in reply)


def status(settings: Settings, database: Database) -> dict[str, Any]:
    now = queries.utcnow()
    with database.session() as session:
        images = dict(session.execute(select(Image.status, func.count()).where(Image.deleted_at.is_(None))
                                      .group_by(Image.status)).all())
        throughput = {window: (session.scalar(select(func.count()).select_from(Verdict).where(
            Verdict.created_at >= now - timedelta(minutes=minutes))) or 0) / minutes
            for window, minutes in WINDOWS.items()}
    report: dict[str, Any] = {"mode": "embedded" if settings.embedded else f"distributed ({settings.broker_url})",
                              "images": images, "throughput_per_minute": throughput}
    if not settings.embedded:
        report["queues"] = _queue_depths(settings)
        report["workers"] = _workers(settings)
    return report
