import fakewatch.worker.tasks  # noqa: F401  (workers import it through the app's include list)
from fakewatch.config import load_settings
from fakewatch.queues import ACT_TASK, CLASSIFY_TASK, REFRESH_TASK
from fakewatch.worker.app import configure


def test_task_policy_comes_from_settings() -> None:
    app = configure(load_settings({"broker_url": "redis://example:6379/3", "visibility_timeout": 5000,
                                   "queue": "gpu"}, env={}))
    conf = app.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"  # pickle refused
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility == 5000 > conf.task_time_limit > conf.task_soft_time_limit
    assert conf.task_default_queue == "gpu"
    assert {queue.name for queue in conf.task_queues} == {"cpu", "gpu", "training", "actions"}
    assert conf.task_routes[REFRESH_TASK] == {"queue": "training"}
    assert CLASSIFY_TASK in app.tasks and REFRESH_TASK in app.tasks and ACT_TASK in app.tasks
    assert not app.tasks[ACT_TASK].acks_late  # a hook is not run again by a redelivered message


def test_every_worker_consumes_the_actions_queue_beside_its_own() -> None:
    app = configure(load_settings({"broker_url": "redis://x"}, env={}))
    worker = app.Worker.__new__(app.Worker)
    worker.app = app
    worker.setup_queues("gpu,cpu")
    assert set(app.amqp.queues.consume_from) == {"gpu", "cpu", "actions"}


def test_refresh_schedule_is_off_by_default() -> None:
    assert configure(load_settings({"broker_url": "redis://x"}, env={})).conf.beat_schedule == {}
    scheduled = configure(load_settings({"broker_url": "redis://x", "refresh_interval": 86400}, env={})).conf
    assert scheduled.beat_schedule["refresh"]["task"] == REFRESH_TASK
    assert scheduled.beat_schedule["refresh"]["schedule"] == 86400
