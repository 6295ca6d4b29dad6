"""Distributed mode against the real Redis and PostgreSQL on this machine, with real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kombu import Connection, Exchange, Producer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from fakewatch.config import Settings, load_settings
from fakewatch.db.session import Database, make_engine, upgrade
from fakewatch.db.tables import Action, Content, Image, Verdict
from fakewatch.mode import Mode, open_mode
from fakewatch.watcher.observer import Watcher
from tests.conftest import noisy_image, smooth_image, wait_until, write_image
from tests.integration.conftest import write_sleeping_hook
from tests.integration.services import (
    CLAIM_KEY,
    REDIS_URL,
    RedisServer,
    TcpProxy,
    WorkerProcess,
    child_pids,
    claim_redis_db,
    flush_redis,
    redis_or_skip,
    throwaway_postgres,
)

pytestmark = pytest.mark.timeout(300)


class Cluster:
    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.workers: list[WorkerProcess] = []
        self.modes: list[Mode] = []
        self.database = Database(env["FAKEWATCH_DATABASE_URL"], auto_upgrade=False)

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(overrides, env=self.env)

    def mode(self, **overrides: Any) -> Mode:
        opened = open_mode(self.settings(**overrides))
        self.modes.append(opened)
        return opened

    def worker(self, concurrency: int = 1, env: dict[str, str] | None = None) -> WorkerProcess:
        process = WorkerProcess({**self.env, **(env or {})}, self.folder / f"worker{len(self.workers)}.log",
                                concurrency)
        self.workers.append(process)
        return process

    def counts(self) -> dict[str, int]:
        with self.database.session() as session:
            return {
                "images": session.scalar(select(func.count()).select_from(Image)),
                "done": session.scalar(select(func.count()).select_from(Image).where(Image.status == "done")),
                "verdicts": session.scalar(select(func.count()).select_from(Verdict)),
                "contents": session.scalar(select(func.count()).select_from(Content)),
                "most_verdicts_per_content": session.scalar(select(func.max(
                    select(func.count().label("n")).select_from(Verdict)
                    .group_by(Verdict.content_id, Verdict.classifier)
                    .subquery().c.n))) or 0,
            }

    def wait_all_done(self, expected: int, timeout: float = 180, also: Any = None) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while time.monotonic() < deadline:
            counts = self.counts()
            if counts["done"] >= expected:
                return counts
            if also is not None:
                also()
            time.sleep(0.5)
        logs = "\n".join(worker.output()[-3000:] for worker in self.workers)
        raise AssertionError(f"only {counts} after {timeout} s; worker logs:\n{logs}")


@pytest.fixture
def cluster(tmp_path: Path, stand_in_classifier) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    redis_url = redis_or_skip()
    flush_redis(redis_url)
    with throwaway_postgres() as database_url:
        upgrade(make_engine(database_url))
        env = {"FAKEWATCH_DATABASE_URL": database_url, "FAKEWATCH_BROKER_URL": redis_url,
               "FAKEWATCH_CLASSIFIER": str(stand_in_classifier.path), "FAKEWATCH_HOME": str(tmp_path / "home"),
               "FAKEWATCH_TASK_BATCH": "100", "FAKEWATCH_BATCH_SIZE": "100", "FAKEWATCH_CONFIG": "",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        running = Cluster(env, tmp_path)
        try:
            yield running
        finally:
            for worker in running.workers:
                worker.stop()
            for mode in running.modes:
                mode.close()
            running.database.dispose()
            flush_redis(redis_url)


def write_many(folder: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    return [write_image(folder / f"{seed}_{index:05d}.jpg", (noisy_image if index % 2 else smooth_image)(rng),
                        quality=92) for index in range(count)]


def test_two_thousand_images_through_a_watched_folder_and_two_workers(cluster: Cluster) -> None:
    watched = cluster.folder / "watched"
    watched.mkdir()
    cluster.worker(concurrency=2)  # two worker processes
    watcher = Watcher(cluster.mode(stability_delay=0.3, rescan_interval=0).intake, [str(watched)])
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    assert watcher.started.wait(60)
    staged = write_many(cluster.folder / "staging", 2000, seed=1)
    for path in staged:
        path.rename(watched / path.name)  # dropped in, as a user or another program would
    counts = cluster.wait_all_done(2000)
    watcher.stop.set()
    thread.join(20)
    assert counts["images"] == 2000 and counts["contents"] == 2000
    assert counts["verdicts"] == 2000 and counts["most_verdicts_per_content"] == 1
    with cluster.database.session() as session:
        assert set(session.scalars(select(Verdict.classifier))) == {Path(cluster.env["FAKEWATCH_CLASSIFIER"]).name}
        # each row was stamped as queued when it was recorded, and got its verdict time with its status
        stamped = session.scalar(select(func.count()).select_from(Image).where(
            Image.queued_at.is_not(None), Image.classified_at.is_not(None), Image.queued_at <= Image.classified_at))
    assert stamped == 2000


def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(cluster: Cluster) -> None:
    paths = write_many(cluster.folder / "archive", 3000, seed=2)
    mode = cluster.mode(task_batch=1000, sweep_after=3.0)
    intake = mode.intake
    victim = cluster.worker(env={"FAKEWATCH_BATCH_SIZE": "50"})  # commits every 50 images within a task
    intake.process([str(path) for path in paths])
    deadline = time.monotonic() + 120
    while cluster.counts()["verdicts"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.counts()["verdicts"] > 0, victim.output()[-3000:]
    victim.kill()  # SIGKILL while its first 1,000-image task is half done and unacknowledged
    partial = cluster.counts()
    assert partial["done"] < 3000
    cluster.worker()
    counts = cluster.wait_all_done(3000, also=mode.dispatcher.sweep)  # the sweeper re-queues what was lost
    assert counts["verdicts"] == 3000 and counts["most_verdicts_per_content"] == 1


def test_redis_restart_mid_run_loses_nothing(cluster: Cluster) -> None:
    redis = RedisServer(cluster.folder)
    redis.start()
    try:
        env = {"FAKEWATCH_BROKER_URL": redis.url}
        cluster.env.update(env)
        cluster.worker()
        mode = cluster.mode(stability_delay=0.2, rescan_interval=0, sweep_after=3.0)
        watched = cluster.folder / "watched"
        watched.mkdir()
        watcher = Watcher(mode.intake, [str(watched)], sweep_interval=1.0)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        assert watcher.started.wait(60)
        for path in write_many(cluster.folder / "first", 200, seed=3):
            path.rename(watched / path.name)
        assert wait_until(lambda: cluster.counts()["images"] == 200, 60)  # recorded and queued
        redis.stop()  # queued messages die with it
        for path in write_many(cluster.folder / "second", 200, seed=4):
            path.rename(watched / path.name)  # arrive while the broker is down
        assert wait_until(lambda: cluster.counts()["images"] == 400, 60)  # recorded; their sends fail
        redis.start()
        counts = cluster.wait_all_done(400)
        watcher.stop.set()
        thread.join(30)
        assert counts["images"] == 400 and counts["verdicts"] == 400 and counts["most_verdicts_per_content"] == 1
        assert cluster.workers[-1].alive()
    finally:
        redis.stop()


def test_postgres_briefly_unavailable_tasks_retry_and_succeed(cluster: Cluster) -> None:
    real = make_url(cluster.env["FAKEWATCH_DATABASE_URL"])
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    try:
        through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        worker = cluster.worker(env={"FAKEWATCH_DATABASE_URL": through_proxy})
        paths = write_many(cluster.folder / "archive", 1500, seed=5)
        intake = cluster.mode(task_batch=100).intake
        proxy.cut()  # the database vanishes for the worker before and while the tasks arrive
        intake.process([str(path) for path in paths])
        deadline = time.monotonic() + 60
        while "retry" not in worker.output().lower() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "retry" in worker.output().lower(), worker.output()[-3000:]  # the worker hit the outage
        assert cluster.counts()["verdicts"] == 0
        proxy.restore()
        counts = cluster.wait_all_done(1500)
        assert counts["verdicts"] == 1500 and counts["most_verdicts_per_content"] == 1
        assert worker.alive()
        assert "Retry" in worker.output() or "retry" in worker.output()
    finally:
        proxy.close()


def test_malformed_messages_are_rejected_and_the_worker_keeps_working(cluster: Cluster) -> None:
    worker = cluster.worker()
    deadline = time.monotonic() + 60
    while " ready." not in worker.output() and time.monotonic() < deadline:  # queue bindings exist once ready
        time.sleep(0.1)
    broker = cluster.env["FAKEWATCH_BROKER_URL"]
    with Connection(broker) as connection:
        producer = Producer(connection.default_channel, exchange=Exchange("cpu", type="direct"), routing_key="cpu")

        def send(task: str, args: Any, body: Any = None, content_type: str = "application/json") -> None:
            message_id = f"bad-{time.monotonic_ns()}"
            headers = {"lang": "py", "task": task, "id": message_id, "root_id": message_id, "argsrepr": "",
                       "kwargsrepr": "", "origin": "test"}
            payload = body if body is not None else json.dumps([args, {}, {}])
            producer.publish(payload, headers=headers, content_type=content_type, content_encoding="utf-8",
                             serializer=None)

        send("fakewatch.no_such_task", [[1]])
        send("fakewatch.classify", [["not", "ids"]])
        send("fakewatch.classify", [{"ids": 1}])
        send("fakewatch.classify", None, body="{this is not json", content_type="application/json")
        send("fakewatch.classify", None, body=b"\x80\x04\x95 pickled", content_type="application/x-python-serialize")
    rejections = ("fakewatch.no_such_task", "list of integer image ids", "Can't decode message body",
                  "Refusing to deserialize untrusted content of type pickle")
    deadline = time.monotonic() + 60
    while not all(text in worker.output() for text in rejections) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.alive()
    paths = write_many(cluster.folder / "good", 20, seed=6)
    cluster.mode().intake.process([str(path) for path in paths])
    counts = cluster.wait_all_done(20)
    assert counts["verdicts"] == 20 and worker.alive()
    log = worker.output()
    assert "fakewatch.no_such_task" in log  # unregistered task reported
    assert "list of integer image ids" in log  # wrong argument types rejected with our message
    assert "Can't decode message body" in log  # not JSON
    assert "Refusing to deserialize untrusted content of type pickle" in log  # pickle refused



def test_consumer_that_dies_is_started_again_and_the_work_finishes(cluster: Cluster) -> None:
    """Whatever ends the consumer (here SIGKILL; in the wild kombu's reconnect AttributeError), the
    `fakewatch worker` process stays up and starts a new one."""
    worker = cluster.worker()
    deadline = time.monotonic() + 60
    while " ready." not in worker.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    first = child_pids(worker.process.pid)
    assert len(first) == 1, worker.output()[-3000:]
    mode = cluster.mode(task_batch=200, sweep_after=3.0)
    mode.intake.process([str(path) for path in write_many(cluster.folder / "archive", 1000, seed=7)])
    deadline = time.monotonic() + 120
    while cluster.counts()["verdicts"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(first[0], signal.SIGKILL)  # the consumer's main process, holding unacknowledged batches
    counts = cluster.wait_all_done(1000, also=mode.dispatcher.sweep)
    assert counts["verdicts"] == 1000 and counts["most_verdicts_per_content"] == 1
    assert worker.alive()
    second = child_pids(worker.process.pid)
    assert len(second) == 1 and second != first
    assert "ended with signal SIGKILL; starting it again" in worker.output()
    worker.stop()
    assert worker.process.returncode == 0 and not Path(f"/proc/{second[0]}").exists()


def pipes(pid: int, mode: int) -> dict[int, str]:
    """``pid``'s pipe ends open for reading (mode 0) or writing (mode 1): pipe inode -> its /proc fd path."""
    found: dict[int, str] = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            flags = int(Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError):
            continue
        if target.startswith("pipe:[") and flags & 3 == mode and int(fd.name) > 2:
            found[int(target[6:-1])] = str(fd)
    return found


def test_consumer_whose_stop_hangs_after_an_unrecoverable_error_is_replaced(cluster: Cluster) -> None:
    """A result message that reaches the consumer cut short (as when a broker reconnect drops a half-read
    one) is Celery's ``Unrecoverable error: UnpicklingError("invalid load key")``; its warm stop then waits
    for the pool, here for ever (the other pool process is stopped). The consumer exits after its grace
    period anyway, and the supervisor starts a new one that finishes the work."""
    worker = cluster.worker(concurrency=2)
    mode = cluster.mode(task_batch=50, sweep_after=5.0)
    mode.intake.process([str(path) for path in write_many(cluster.folder / "first", 100, seed=13)])
    cluster.wait_all_done(100)
    [consumer] = child_pids(worker.process.pid)
    pool = child_pids(consumer)
    assert len(pool) == 2, worker.output()[-3000:]
    results = [path for inode, path in pipes(pool[0], 1).items() if inode in pipes(consumer, 0)
               and inode not in pipes(pool[0], 0)]  # written by the pool process, read by the consumer
    assert results, worker.output()[-3000:]
    os.kill(pool[1], signal.SIGSTOP)
    for path in results:
        with open(path, "wb", buffering=0) as pipe:
            pipe.write(b"\x00\x00\x00\x10" + b"\x01" * 16)  # a length, then no pickle
    mode.intake.process([str(path) for path in write_many(cluster.folder / "second", 100, seed=14)])
    counts = cluster.wait_all_done(200, timeout=120, also=mode.dispatcher.sweep)
    assert counts["verdicts"] == 200 and counts["most_verdicts_per_content"] == 1
    output = worker.output()
    assert "Unrecoverable error: UnpicklingError" in output, output[-3000:]
    assert "did not stop within 30 s of an unrecoverable error" in output, output[-3000:]
    assert "ended with exit code 1; starting it again" in output, output[-3000:]
    assert worker.alive() and child_pids(worker.process.pid) != [consumer]
    assert not Path(f"/proc/{pool[1]}").exists()  # the stopped pool process was killed, not left behind


def test_a_stop_that_was_asked_for_is_not_cut_short_by_the_failure_grace(cluster: Cluster) -> None:
    """Ctrl-C is a warm stop with Celery's exit code 1, like an unrecoverable error's, but it waits for the
    batches in hand as long as they take: here a pool process that never finishes (it is stopped) keeps the
    consumer waiting past the 30 s grace an error's stop gets."""
    worker = cluster.worker(concurrency=2)
    mode = cluster.mode(task_batch=50)
    mode.intake.process([str(path) for path in write_many(cluster.folder / "first", 100, seed=15)])
    cluster.wait_all_done(100)
    [consumer] = child_pids(worker.process.pid)
    pool = child_pids(consumer)
    os.kill(pool[0], signal.SIGSTOP)
    mode.intake.process([str(path) for path in write_many(cluster.folder / "second", 200, seed=16)])
    assert wait_until(lambda: cluster.counts()["done"] >= 250, 60)  # all but the stopped process's batch
    os.kill(worker.process.pid, signal.SIGINT)  # the supervisor passes it on
    assert not wait_until(lambda: "did not stop within" in worker.output() or not Path(f"/proc/{consumer}").exists(),
                          40)  # past the 30 s an error's stop gets
    output = worker.output()
    assert "did not stop within" not in output, output[-3000:]
    assert Path(f"/proc/{consumer}").exists() and worker.alive(), output[-3000:]
    os.kill(pool[0], signal.SIGCONT)  # the batch finishes, and the stop with it
    worker.process.wait(60)
    assert not Path(f"/proc/{consumer}").exists()


def test_a_hook_whose_worker_was_killed_is_retried_once_by_another_worker(cluster: Cluster) -> None:
    """A `fakewatch.act` task runs a command hook that hangs; its worker is killed (SIGKILL: the supervisor,
    consumer, pool and hook). The claim stays running; once its time has passed, another worker's actions
    sweep retries it, once, and records it done."""
    hook, calls = write_sleeping_hook(cluster.folder)
    cluster.env.update({"FAKEWATCH_ACTION_COMMAND": f"{sys.executable} {hook}",
                        "FAKEWATCH_ACTION_LABELS": "fake,real,uncertain", "FAKEWATCH_ACTION_TIMEOUT": "3",
                        "FAKEWATCH_SWEEP_INTERVAL": "0.5"})

    def action() -> Action:
        with cluster.database.session() as session:
            (row,) = session.scalars(select(Action))
            return row

    victim = cluster.worker()
    (photo,) = write_many(cluster.folder / "in", 1, seed=17)
    cluster.mode().intake.process([str(photo)])
    # the hook's line written, not only its file created: a kill between the two would lose the first call
    assert wait_until(lambda: calls.exists() and calls.read_text().endswith("\n"), 120), victim.output()[-3000:]
    victim.kill()  # mid-hook: the act message was acknowledged when taken, so nothing is redelivered
    assert (action().action, action().status) == ("command", "running")
    survivor = cluster.worker()
    assert wait_until(lambda: action().status == "done", 120), survivor.output()[-3000:]
    assert calls.read_text().splitlines() == [str(photo)] * 2  # the first run, and its one retry
    assert "exited 0" in (action().detail or "") and "retrying 1 interrupted verdict actions" in survivor.output()
    assert not wait_until(lambda: len(calls.read_text().splitlines()) > 2, 3 + 5 + 2)  # done is done
    assert cluster.counts()["done"] == 1 and survivor.alive()


def test_each_test_run_claims_a_redis_database_of_its_own(cluster: Cluster) -> None:
    """Two runs at once (this one, and another process) get different databases; a claim whose run has
    ended is taken over; flushing one run's database leaves the other's keys alone."""
    import redis

    ours = cluster.env["FAKEWATCH_BROKER_URL"]
    other = subprocess.run([sys.executable, "-c", "import sys, time; from tests.integration.services import "
                            "claim_redis_db; print(claim_redis_db(sys.argv[1])); sys.stdout.flush()",
                            REDIS_URL], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    theirs = other.stdout.strip()
    assert theirs != ours
    redis.Redis.from_url(theirs).set("their-queue", "work")
    flush_redis(ours)
    assert redis.Redis.from_url(theirs).get("their-queue") == b"work"  # not flushed by us
    assert redis.Redis.from_url(ours).get(CLAIM_KEY) is not None  # our flush keeps our claim
    # that process has exited without releasing: its database is free again to the next run
    assert claim_redis_db(REDIS_URL) == theirs
    redis.Redis.from_url(theirs).flushdb()


def test_pool_process_killed_its_batch_is_redelivered(cluster: Cluster) -> None:
    worker = cluster.worker()
    mode = cluster.mode(task_batch=200)
    mode.intake.process([str(path) for path in write_many(cluster.folder / "archive", 1000, seed=8)])
    deadline = time.monotonic() + 120
    while cluster.counts()["verdicts"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    pool = [pid for consumer in child_pids(worker.process.pid) for pid in child_pids(consumer)]
    assert pool, worker.output()[-3000:]
    os.kill(pool[0], signal.SIGKILL)
    counts = cluster.wait_all_done(1000)  # no sweep: reject_on_worker_lost puts the batch back at once
    assert counts["verdicts"] == 1000 and counts["most_verdicts_per_content"] == 1
    assert worker.alive()


def test_broker_cut_through_a_proxy_while_tasks_wait_loses_nothing(cluster: Cluster) -> None:
    redis = RedisServer(cluster.folder)
    redis.start()
    proxy = TcpProxy("127.0.0.1", redis.port)
    try:
        cluster.env["FAKEWATCH_BROKER_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
        worker = cluster.worker()
        mode = cluster.mode(task_batch=100, sweep_after=3.0, retry_max_delay=2.0)
        mode.intake.process([str(path) for path in write_many(cluster.folder / "first", 500, seed=9)])
        deadline = time.monotonic() + 120
        while cluster.counts()["verdicts"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        proxy.cut()
        later = [str(path) for path in write_many(cluster.folder / "second", 500, seed=10)]
        mode.intake.process(later)  # recorded; the broker is unreachable, so they stay pending
        assert mode.intake.unsent
        wait_until(lambda: "Connection to broker lost" in worker.output(), 30)  # the worker saw the outage
        assert wait_until(lambda: time.monotonic() >= mode.queue.retry_at, 30)  # the sender's backoff is over
        proxy.restore()
        counts = cluster.wait_all_done(1000, also=mode.dispatcher.sweep)
        assert counts["verdicts"] == 1000 and counts["most_verdicts_per_content"] == 1
        assert worker.alive()
    finally:
        proxy.close()
        redis.stop()


def test_broker_cut_while_tasks_wait_to_retry_keeps_the_worker_up(cluster: Cluster) -> None:
    """The reported crash: tasks wait to retry (the database is down, so their retries sit in the consumer
    as unacknowledged ETA messages) while the broker connection is cut and restored."""
    redis = RedisServer(cluster.folder)
    redis.start()
    broker_proxy = TcpProxy("127.0.0.1", redis.port)
    real = make_url(cluster.env["FAKEWATCH_DATABASE_URL"])
    database_proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    try:
        cluster.env["FAKEWATCH_BROKER_URL"] = f"redis://127.0.0.1:{broker_proxy.port}/0"
        worker = cluster.worker(env={
            "FAKEWATCH_DATABASE_URL": real.set(host="127.0.0.1", port=database_proxy.port).render_as_string(
                hide_password=False),
            "FAKEWATCH_RETRY_MAX_DELAY": "6"})
        mode = cluster.mode(task_batch=100, sweep_after=20.0)
        database_proxy.cut()
        mode.intake.process([str(path) for path in write_many(cluster.folder / "archive", 500, seed=11)])
        deadline = time.monotonic() + 60
        while worker.output().count("retrying batch") < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "retrying batch" in worker.output(), worker.output()[-3000:]
        for _ in range(3):
            lost, connected = (worker.output().count(text) for text in ("Connection to broker lost", "Connected to"))
            broker_proxy.cut()
            wait_until(lambda lost=lost: worker.output().count("Connection to broker lost") > lost, 30)
            broker_proxy.restore()
            wait_until(lambda connected=connected: worker.output().count("Connected to") > connected, 60)
        database_proxy.restore()
        counts = cluster.wait_all_done(500, also=mode.dispatcher.sweep)
        assert counts["verdicts"] == 500 and counts["most_verdicts_per_content"] == 1
        assert worker.alive()
    finally:
        database_proxy.close()
        broker_proxy.close()
        redis.stop()


def test_console_uploads_are_queued_and_finished_by_a_worker(cluster: Cluster) -> None:
    from fastapi.testclient import TestClient

    from fakewatch.web.app import create_app

    cluster.worker()
    settings = cluster.settings()
    auth = {"Authorization": "Bearer distributed-token"}
    from tests.provenance import A1111, pixels, png_with_text

    files = [("files", (path.name, path.read_bytes(), "image/jpeg"))
             for path in write_many(cluster.folder / "uploads-src", 3, seed=12)]
    files.append(("files", ("generated.png", png_with_text(pixels(9), {"parameters": A1111}), "image/png")))
    with TestClient(create_app(settings, "distributed-token"), base_url="http://127.0.0.1:8000") as client:
        answer = client.post("/api/v1/scan", files=files, headers=auth)
        assert answer.status_code == 200 and answer.json()["mode"] == "distributed"
        rows = answer.json()["results"]
        assert len(rows) == 4 and {row["status"] for row in rows} <= {"pending", "done"}
        deadline = time.monotonic() + 120
        records = [client.get(f"/api/v1/images/{row['id']}", headers=auth).json() for row in rows]
        while any(record["status"] == "pending" for record in records) and time.monotonic() < deadline:
            time.sleep(0.2)
            records = [client.get(f"/api/v1/images/{row['id']}", headers=auth).json() for row in rows]
        assert all(record["status"] == "done" and record["classifier"] for record in records), records
        assert [record["reason"] for record in records] == ["classifier"] * 3 + ["provenance"]  # evidence, on a worker
        assert records[3]["evidence"][0]["details"]["tool"] == "AUTOMATIC1111/Forge"
        status = client.get("/api/v1/status", headers=auth).json()
        assert status["mode"].startswith("distributed") and "queues" in status
        assert 'fakewatch_queue_depth{queue="cpu"}' in client.get("/api/v1/metrics", headers=auth).text
        assert client.get(f"/images/{rows[0]['id']}", headers=auth).status_code == 200
