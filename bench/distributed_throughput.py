"""End-to-end throughput of distributed mode: files/s from `enqueue` to verdicts committed in PostgreSQL,
with each runtime (FAKEWATCH_RUNTIME) and 1 and 2 worker processes, on 32x32 and 1024x1024 JPEGs,
beside the classifier's raw batch throughput measured in the same run. Needs the local Redis and
PostgreSQL (FAKEWATCH_TEST_REDIS_URL, FAKEWATCH_TEST_POSTGRES_URL).

    python bench/distributed_throughput.py [--small 20000] [--large 1000] [--runtimes keras,lite] [--workers 1,2]

32x32 images go to the thumbnail classifier and 1024x1024 ones to the photo classifier (domain routing), so
each row's raw rate is that classifier's, on its own input size. Pool memory is sampled each time another
fifth of the files is done: a flat series means no growth over the run. The last column shows where the
machine's CPU time went during the timed part: the cores times the seconds it took, then the CPU seconds
used by the worker's processes, PostgreSQL, Redis and the enqueuer (this process).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, sample_images, table
from sqlalchemy import func, select

sys.path.insert(0, str(ROOT))
from fakewatch.classifiers.loading import load  # noqa: E402
from fakewatch.config import load_settings  # noqa: E402
from fakewatch.db.session import Database, make_engine, upgrade  # noqa: E402
from fakewatch.db.tables import Image  # noqa: E402
from fakewatch.mode import open_mode  # noqa: E402
from fakewatch.registry import Registry  # noqa: E402
from tests.integration.services import (  # noqa: E402
    REDIS_URL,
    WorkerProcess,
    child_pids,
    flush_redis,
    throwaway_postgres,
)


def raw_rate(domain: str, runtime: str) -> float:
    """The active ``domain`` classifier's batch rate (images/s, one crop each) in this process, with the
    runtime's automatic thread count (every core): the rate one process reaches on the whole machine."""
    version = Registry(load_settings()).resolve(domain)
    classifier = load(version, 256, runtime)
    size = version.spec.size
    count = 8192 if size <= 64 else 512
    images = np.random.default_rng(0).integers(0, 255, (count, size, size, 3), dtype=np.uint8)
    classifier.predict(images[:256])
    best = float("inf")
    for _ in range(3):  # the best of three: the rate the classifier reaches, not a slow moment of the machine
        started = time.perf_counter()
        classifier.predict(images)
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def pool_rss_mb(worker: WorkerProcess) -> float:
    """Resident memory of the worker's pool processes (under its supervisor and consumer), in MB."""
    total = 0
    for consumer in child_pids(worker.process.pid):
        for pid in child_pids(consumer):
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    return total / 1024


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by the processes on this machine that take part, by role: the
    worker (supervisor, consumer and pool), PostgreSQL, Redis and this process (the enqueuer)."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {"worker": 0.0, "postgres": 0.0, "redis": 0.0, "enqueuer": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(pid) == os.getpid():
            used["enqueuer"] += seconds
        elif "postgres" in command:
            used["postgres"] += seconds
        elif "redis-server" in command:
            used["redis"] += seconds
        elif "fakewatch" in command and " worker" in command:
            used["worker"] += seconds
    return used


def count_done(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Image).where(Image.status == "done")) or 0)


def wait_done(database: Database, count: int) -> None:
    while count_done(database) < count:
        time.sleep(0.1)


def run(files: list[Path], warmup: list[Path], workers: int, scratch: Path,
        task_batch: int, runtime: str) -> tuple[float, list[float], dict[str, float], float]:
    flush_redis(REDIS_URL)
    with throwaway_postgres() as database_url:
        upgrade(make_engine(database_url))
        env = {"FAKEWATCH_DATABASE_URL": database_url, "FAKEWATCH_BROKER_URL": REDIS_URL,
               "FAKEWATCH_HOME": str(scratch / "home"), "FAKEWATCH_TASK_BATCH": str(task_batch),
               "FAKEWATCH_RUNTIME": runtime}
        settings = load_settings(env={**env})
        worker = WorkerProcess(env, scratch / f"worker-{workers}.log", concurrency=workers)
        database = Database(database_url, auto_upgrade=False)
        intake = open_mode(settings, database).intake
        # Warm-up, not timed: each worker process loads TensorFlow and the classifier on its first task.
        intake.process([str(path) for path in warmup])
        wait_done(database, len(warmup))
        started, cpu_before = time.perf_counter(), cpu_seconds()
        for start in range(0, len(files), 1000):
            intake.process([str(path) for path in files[start:start + 1000]])
        memory: list[float] = []  # pool RSS at 20%, 40%, 60%, 80% done, then at the end
        while True:
            done = count_done(database) - len(warmup)
            if len(memory) < 4 and done >= len(files) * (len(memory) + 1) // 5:
                memory.append(pool_rss_mb(worker))
            if done >= len(files):
                break
            # Counting done rows is itself work for PostgreSQL (a scan of the growing table): poll rarely while
            # much is left, and every 50 ms near the end, so the clock stops within about 50 ms of the last verdict.
            rate = max(done, 1) / (time.perf_counter() - started)
            time.sleep(min(2.0, max(0.05, (len(files) - done) / rate / 4)))
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds()
        memory.append(pool_rss_mb(worker))
        worker.stop()
        database.dispose()
    cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
    return len(files) / elapsed, memory, cpu, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20000, help="32x32 files")
    parser.add_argument("--large", type=int, default=1000, help="1024x1024 files")
    parser.add_argument("--task-batch", type=int, default=256, help="image ids per queued task")
    parser.add_argument("--runtimes", default="keras,lite", help="FAKEWATCH_RUNTIME values to compare")
    parser.add_argument("--workers", default="1,2", help="worker process counts to run")
    args = parser.parse_args()
    rows = []
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        warmup = sample_images(scratch / "warmup", 8 * args.task_batch, size=48)  # content unlike the rest
        small = sample_images(scratch / "small", args.small)
        large = sample_images(scratch / "large", args.large, size=1024) if args.large else []
        for runtime in args.runtimes.split(","):
            for label, files, domain in (("32x32 JPEG", small, "thumbnail"), ("1024x1024 JPEG", large, "photo")):
                raw = raw_rate(domain, runtime) if files else 0.0
                for workers in [int(count) for count in args.workers.split(",")] if files else []:
                    rate, memory, cpu, elapsed = run(files, warmup, workers, scratch, args.task_batch, runtime)
                    rows.append([runtime, label, len(files), workers, f"{rate:,.0f}", f"{raw:,.0f}",
                                 f"{rate / raw:.0%}", " -> ".join(f"{mb:,.0f}" for mb in memory),
                                 f"{cores * elapsed:.1f}: " + ", ".join(f"{role} {seconds:.1f}"
                                                                         for role, seconds in cpu.items())])
    table(f"Distributed mode, enqueue -> verdict committed in PostgreSQL (files/s), {args.task_batch} ids per task",
          ["runtime", "images", "files", "worker processes", "end-to-end files/s", "raw classifier images/s",
           "ratio", "pool RSS MB at 20/40/60/80/100% done", "CPU s available: used by each"], rows)


if __name__ == "__main__":
    main()
