"""The classify task's database retries wait the configured backoff, never Celery's fixed 180 s."""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import Retry
from sqlalchemy.exc import OperationalError

from fakewatch.config import load_settings
from fakewatch.worker import tasks
from fakewatch.worker.app import app, configure


def test_database_outage_retries_on_the_configured_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(load_settings({"broker_url": "memory://", "retry_max_delay": 5.0}, env={}))

    def unavailable() -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(tasks, "runtime", unavailable)
    countdowns: list[float] = []

    def retry(**options: Any) -> Retry:
        countdowns.append(options["countdown"])
        return Retry("retrying", when=options["countdown"])

    monkeypatch.setattr(tasks.classify, "retry", retry)
    for attempt in range(6):
        tasks.classify.push_request(retries=attempt)
        try:
            with pytest.raises(Retry):
                tasks.classify.run([1, 2, 3])
        finally:
            tasks.classify.pop_request()
    assert countdowns == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert app.conf.fakewatch_settings.retry_max_delay == 5.0
