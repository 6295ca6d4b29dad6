"""`fakewatch status`: what the queue, the workers and the database are doing."""

from __future__ import annotations

from typing import Any

from fakewatch.broker import sender
from fakewatch.config import Settings
from fakewatch.db.results import images_by_status, verdicts_per_minute
from fakewatch.db.session import Database
from fakewatch.queues import QUEUES
from fakewatch.redact import mask_url

WINDOWS = {"1m": 1, "5m": 5, "15m": 15}


def queue_depths(settings: Settings) -> dict[str, int | str]:
    app = sender(settings)
    depths: dict[str, int | str] = {}
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for name in QUEUES:
                depths[name] = channel.queue_declare(queue=name, passive=False, durable=True,
                                                     auto_delete=False).message_count
    except Exception as exc:  # any broker failure is a status line here, not a crash
        return {"error": f"broker unreachable: {exc}"}
    return depths


def _workers(settings: Settings) -> list[str]:
    try:
        replies = sender(settings).control.ping(timeout=1.0) or []
    except Exception:  # any broker failure means: no workers can be seen
        return []
    return sorted(name for reply in replies for name in reply)


def status(settings: Settings, database: Database) -> dict[str, Any]:
    with database.session() as session:
        images = images_by_status(session)
        throughput = {window: verdicts_per_minute(session, minutes) for window, minutes in WINDOWS.items()}
    mode = "embedded" if settings.embedded else f"distributed ({mask_url(settings.broker_url)})"
    report: dict[str, Any] = {"mode": mode,
                              "images": images, "throughput_per_minute": throughput}
    if not settings.embedded:
        report["queues"] = queue_depths(settings)
        report["workers"] = _workers(settings)
    return report
