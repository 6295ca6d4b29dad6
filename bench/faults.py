"""Fault suite: every fault strikes a run with thousands of images in flight, through the real components
(`fakewatch watch` and `fakewatch worker` processes, a private redis-server, the local PostgreSQL, TCP
proxies that cut connections). Prints one table: images in, verdicts out, lost, duplicated, time to
recover. Then the full hostile-corpus and fuzzing scan with its peak memory.

    python bench/faults.py [--images 3000] [--outage 30] [--fuzz 2000]
                            [--only worker-main,pool,broker,postgres,watcher,disk-full,fuzz]

Images are CIFAKE photos when ../shared is present (generated ones otherwise), classified by the shipped
classifier. "Lost" counts accepted files without a verdict or a recorded error when the run ends;
"duplicated" counts verdicts beyond one per content and classifier. "Recover" runs from the end of the
fault (the kill, the restore, the restart, the freed disk) until the last verdict. Distributed runs use
sweep_after=15 s, sweep_interval=5 s and retry_max_delay=5 s so that a run takes minutes, not hours; with
the defaults (600 s, 60 s, 60 s) the same recoveries take up to those times longer.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from common import ROOT, sample_images, table
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(ROOT))
import pytest  # noqa: E402

from fakewatch.db.session import Database, make_engine, upgrade  # noqa: E402
from fakewatch.db.tables import Image, Verdict  # noqa: E402
from tests.hostile import write_hostile_corpus, write_mutations  # noqa: E402
from tests.integration.services import (  # noqa: E402
    FakewatchProcess,
    RedisServer,
    TcpProxy,
    WorkerProcess,
    child_pids,
    throwaway_postgres,
)

DISTRIBUTED = {"FAKEWATCH_SWEEP_AFTER": "15", "FAKEWATCH_SWEEP_INTERVAL": "5", "FAKEWATCH_RETRY_MAX_DELAY": "5",
               "FAKEWATCH_STABILITY_DELAY": "0.3", "FAKEWATCH_RESCAN_INTERVAL": "0", "FAKEWATCH_TASK_BATCH": "250",
               "FAKEWATCH_BATCH_SIZE": "50", "FAKEWATCH_CONFIG": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
HEADER = ["fault", "images in", "verdicts out", "errors", "lost", "duplicated", "recover (s)", "notes"]


class Run:
    """One fault's world: a fresh PostgreSQL database (or SQLite file), folders, processes, counters."""

    def __init__(self, scratch: Path, name: str, database_url: str, env: dict[str, str]) -> None:
        self.folder = scratch / name
        self.watched = self.folder / "watched"
        self.watched.mkdir(parents=True)
        self.env = {"FAKEWATCH_DATABASE_URL": database_url, "FAKEWATCH_HOME": str(self.folder / "home"), **env}
        self.database = Database(database_url, auto_upgrade=False)
        self.processes: list[FakewatchProcess] = []

    def watcher(self) -> FakewatchProcess:
        log = self.folder / f"watcher{len(self.processes)}.log"
        process = FakewatchProcess(["watch", str(self.watched)], self.env, log)
        self.processes.append(process)
        return process

    def worker(self, env: dict[str, str] | None = None) -> WorkerProcess:
        process = WorkerProcess({**self.env, **(env or {})}, self.folder / f"worker{len(self.processes)}.log")
        self.processes.append(process)
        return process

    def counts(self) -> dict[str, int]:
        with self.database.session() as session:
            by_status = dict(session.execute(select(Image.status, func.count()).group_by(Image.status)).all())
            per_content = select(func.count().label("n")).select_from(Verdict).group_by(
                Verdict.content_id, Verdict.classifier).subquery()
            extra = session.scalar(select(func.coalesce(func.sum(per_content.c.n - 1), 0)))
        return {"done": by_status.get("done", 0), "error": by_status.get("error", 0),
                "images": sum(by_status.values()), "duplicated": int(extra or 0)}

    def wait(self, expected: int, timeout: float, condition: Callable[[dict[str, int]], bool] | None = None) -> float:
        """Seconds until ``expected`` images are finished (done or error), or the timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                counts = self.counts()
            except Exception:  # noqa: BLE001 - the database may be the fault
                counts = {"done": 0, "error": 0}
            if counts["done"] + counts["error"] >= expected and (condition is None or condition(counts)):
                return time.monotonic() - started
            time.sleep(0.2)
        return float("nan")

    def wait_first_verdicts(self, timeout: float = 120) -> None:
        self.wait(1, timeout)

    def row(self, fault: str, images: int, recover: float, notes: str) -> list[object]:
        counts = self.counts()
        lost = images - counts["done"] - counts["error"]
        restarts = sum(process.log_path.read_text(errors="replace").count("starting it again")
                       for process in self.processes if isinstance(process, WorkerProcess))
        if restarts:
            notes += f"; consumer restarted {restarts}x"
        return [fault, images, counts["done"], counts["error"], lost, counts["duplicated"],
                "never" if recover != recover else f"{recover:.1f}", notes]

    def close(self) -> None:
        for process in self.processes:
            process.stop(grace=60)
        self.database.dispose()


def drop(paths: list[Path], folder: Path, pause: float = 0.0, on_each: Callable[[int], None] | None = None) -> None:
    for index, path in enumerate(paths):
        path.rename(folder / path.name)  # a finished file appears at once, as a copy tool's rename does
        if on_each is not None:
            on_each(index)
        if pause:
            time.sleep(pause)


def stage(images: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for path in images:
        target = folder / path.name
        shutil.copyfile(path, target)
        staged.append(target)
    return staged


def distributed(scratch: Path, name: str, stack: ExitStack, redis: RedisServer, broker_url: str | None = None) -> Run:
    database_url = stack.enter_context(throwaway_postgres())
    upgrade(make_engine(database_url))
    run = Run(scratch, name, database_url, {**DISTRIBUTED, "FAKEWATCH_BROKER_URL": broker_url or redis.url})
    stack.callback(run.close)
    return run


# --- the faults -------------------------------------------------------------------------------------------


def worker_main_kill(scratch: Path, images: list[Path], outage: float, stack: ExitStack,
                     redis: RedisServer) -> list[object]:
    run = distributed(scratch, "worker-main", stack, redis)
    worker = run.worker()
    run.watcher()
    drop(stage(images, run.folder / "staging"), run.watched)
    run.wait_first_verdicts()
    consumer = child_pids(worker.process.pid)
    os.kill(consumer[0], signal.SIGKILL)  # the consumer's main process, holding unacknowledged batches
    killed_at = run.counts()["done"]
    recover = run.wait(len(images), 600)
    return run.row("worker main process SIGKILL", len(images), recover,
                   f"killed at {killed_at} verdicts; supervisor restarted the consumer, the sweeper re-queued")


def pool_kill(scratch: Path, images: list[Path], outage: float, stack: ExitStack, redis: RedisServer) -> list[object]:
    run = distributed(scratch, "pool", stack, redis)
    worker = run.worker()
    run.watcher()
    drop(stage(images, run.folder / "staging"), run.watched)
    run.wait_first_verdicts()
    pool = [pid for consumer in child_pids(worker.process.pid) for pid in child_pids(consumer)]
    os.kill(pool[0], signal.SIGKILL)
    killed_at = run.counts()["done"]
    recover = run.wait(len(images), 600)
    return run.row("worker pool process SIGKILL", len(images), recover,
                   f"killed at {killed_at} verdicts; the batch was redelivered at once")


def broker_cut(scratch: Path, images: list[Path], outage: float, stack: ExitStack,
               redis: RedisServer) -> list[object]:
    proxy = TcpProxy("127.0.0.1", redis.port)
    stack.callback(proxy.close)
    run = distributed(scratch, "broker", stack, redis, broker_url=f"redis://127.0.0.1:{proxy.port}/0")
    run.worker()
    run.watcher()
    half = len(images) // 2
    staged = stage(images, run.folder / "staging")
    drop(staged[:half], run.watched)
    run.wait_first_verdicts()
    proxy.cut()
    cut_at = run.counts()["done"]
    drop(staged[half:], run.watched)  # the second half arrives while the broker is unreachable
    time.sleep(outage)
    proxy.restore()
    recover = run.wait(len(images), 600)
    return run.row(f"broker cut {outage:.0f} s (proxy)", len(images), recover,
                   f"cut at {cut_at} verdicts; {len(images) - half} files arrived during the cut")


def postgres_cut(scratch: Path, images: list[Path], outage: float, stack: ExitStack,
                 redis: RedisServer) -> list[object]:
    run = distributed(scratch, "postgres", stack, redis)
    real = make_url(run.env["FAKEWATCH_DATABASE_URL"])
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    stack.callback(proxy.close)
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    run.worker({"FAKEWATCH_DATABASE_URL": through_proxy})
    run.watcher()
    drop(stage(images, run.folder / "staging"), run.watched)
    run.wait_first_verdicts()
    proxy.cut()
    cut_at = run.counts()["done"]
    time.sleep(outage)
    proxy.restore()
    recover = run.wait(len(images), 600)
    return run.row(f"PostgreSQL cut {outage:.0f} s (proxy, worker side)", len(images), recover,
                   f"cut at {cut_at} verdicts; tasks retried with backoff")


def watcher_kill(scratch: Path, images: list[Path], outage: float, stack: ExitStack,
                 redis: RedisServer) -> list[object]:
    run = distributed(scratch, "watcher", stack, redis)
    run.worker()
    watcher = run.watcher()
    staged = stage(images, run.folder / "staging")
    time.sleep(3)  # the watcher is up

    def kill_at_a_third(index: int) -> None:
        if index == len(staged) // 3:
            watcher.kill()

    drop(staged, run.watched, pause=0.002, on_each=kill_at_a_third)
    before = run.counts()["images"]
    run.watcher()
    recover = run.wait(len(images), 600)
    return run.row("watcher SIGKILL mid-drop, restarted", len(images), recover,
                   f"{before} recorded before the restart; catch-up found the rest")


def disk_full(scratch: Path, images: list[Path], outage: float, stack: ExitStack,
              redis: RedisServer) -> list[object]:
    """Embedded mode: the SQLite database lives on a small tmpfs that fills up mid-run; after ``outage``
    seconds of errors the file system is grown, as an operator freeing space would."""
    home = scratch / "disk-full-home"
    home.mkdir()
    size_kb = 300 + len(images) * 4 // 10  # about half of what the run's database needs
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(home)],
                      capture_output=True).returncode != 0:
        raise Skipped("cannot mount a small file system here (needs root)")
    stack.callback(lambda: subprocess.run(["umount", "-l", str(home)], capture_output=True))
    database_url = f"sqlite:///{home}/fakewatch.db"
    upgrade(make_engine(database_url))
    run = Run(scratch, "disk-full", database_url, {"FAKEWATCH_RETRY_MAX_DELAY": "5", "FAKEWATCH_BATCH_SIZE": "250",
                                                   "FAKEWATCH_STABILITY_DELAY": "0.3", "FAKEWATCH_RESCAN_INTERVAL": "0",
                                                   "FAKEWATCH_CONFIG": "", "FAKEWATCH_HOME": str(home)})
    stack.callback(run.close)
    watcher = run.watcher()
    drop(stage(images, run.folder / "staging"), run.watched)
    deadline = time.monotonic() + 300
    message = "database or disk is full"
    while message not in watcher.log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    full = message in watcher.log_path.read_text(errors="replace")
    done_when_full = run.counts()["done"]
    time.sleep(outage if full else 0)
    subprocess.run(["mount", "-o", "remount,size=256m", str(home)], check=True)
    recover = run.wait(len(images), 600)
    return run.row("SQLite disk full (embedded watcher)", len(images), recover,
                   f"full at {done_when_full} verdicts, space freed after {outage:.0f} s" if full
                   else "the disk never filled")


class Skipped(Exception):
    pass


FAULTS: dict[str, Callable[[Path, list[Path], float, ExitStack, RedisServer], list[object]]] = {
    "worker-main": worker_main_kill, "pool": pool_kill, "broker": broker_cut, "postgres": postgres_cut,
    "watcher": watcher_kill, "disk-full": disk_full,
}


def fuzz(scratch: Path, count: int) -> list[object]:
    """`fakewatch scan` of the hostile corpus plus ``count`` mutated files, with the scan's peak RSS."""
    folder = scratch / "fuzz"
    expected = write_hostile_corpus(folder / "hostile", scratch / "outside")
    write_mutations(folder / "mutated", count, seed=2026)
    files = len(expected) + count
    env = {**os.environ, "FAKEWATCH_HOME": str(scratch / "fuzz-home"), "FAKEWATCH_CONFIG": ""}
    started = time.monotonic()
    probe = ("import resource, subprocess, sys\n"
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
             "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    output = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "fakewatch.cli", "-q", "scan",
                             str(folder)], env=env, capture_output=True, text=True, check=True).stdout.split()
    elapsed = time.monotonic() - started
    code, peak_kb = int(output[0]), int(output[1])
    database = Database(f"sqlite:///{scratch / 'fuzz-home' / 'fakewatch.db'}", auto_upgrade=False)
    with database.session() as session:
        by_status = dict(session.execute(select(Image.status, func.count()).group_by(Image.status)).all())
    database.dispose()
    recordable = count + sum(outcome is not None for outcome in expected.values())  # dotfiles, *.part: ignored
    rows = sum(by_status.values())
    return [f"{count:,} mutated + {len(expected)} hostile entries", files, recordable, rows, recordable - rows,
            ", ".join(f"{status}: {number:,}" for status, number in sorted(by_status.items())),
            f"{peak_kb / 1024:,.0f}", f"{elapsed:.1f}", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000, help="images in flight in each fault")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds each cut or full disk lasts")
    parser.add_argument("--fuzz", type=int, default=2000, help="mutated files in the fuzzing scan")
    parser.add_argument("--only", default=",".join([*FAULTS, "fuzz"]), help="comma-separated faults to run")
    args = parser.parse_args()
    chosen = args.only.split(",")
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        images = sample_images(scratch / "images", args.images)
        for name in chosen:
            if name not in FAULTS:
                continue
            print(f"running fault: {name}", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                with ExitStack() as stack:
                    redis = RedisServer(scratch)
                    redis.start()
                    stack.callback(redis.stop)
                    rows.append(FAULTS[name](scratch, images, args.outage, stack, redis))
            except (Skipped, pytest.skip.Exception) as exc:
                rows.append([name, "-", "-", "-", "-", "-", "-", f"skipped: {exc}"])
            print(f"  {rows[-1]} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        table("Faults (bench/faults.py): every accepted image ends with a verdict or a recorded error", HEADER, rows)
        if "fuzz" in chosen:
            table("Hostile corpus and fuzzing scan (`fakewatch scan`, one process)",
                  ["files", "on disk", "to record", "rows", "lost", "outcome", "peak RSS MB", "seconds", "exit code"],
                  [fuzz(scratch, args.fuzz)])
    print(f"\npeak RSS of this script: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
