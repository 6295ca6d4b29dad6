"""Real services for distributed-mode tests: PostgreSQL, Redis, worker processes, and fault injection.

Service addresses come from FAKEWATCH_TEST_POSTGRES_URL and FAKEWATCH_TEST_REDIS_URL (localhost defaults);
a test whose service is absent is skipped with a message naming it.

Test runs share these servers without meeting: each PostgreSQL test gets a database created for it under a
unique name and dropped afterwards, and each test run (each pytest process) claims a Redis database of its
own (:func:`claim_redis_db`), so two `make test` runs from two checkouts never flush or consume each other's
queues.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("FAKEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FAKEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")  # its db: the first tried
CLAIM_KEY = "fakewatch-test:claimed-by"  # in each Redis database a test run uses: "host:pid:nonce" of that run
CLAIM_SECONDS = 6 * 3600  # a claim a run on another machine left behind expires after this
_TAKE_OVER = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
              "return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
_FLUSH = ("for _, key in ipairs(redis.call('keys', '*')) do if key ~= KEYS[1] then redis.call('del', key) end end"
          " return 1")
_claimed: dict[str, str] = {}  # server URL -> the URL of the database this run claimed on it


def _gone(owner: str) -> bool:
    """Whether ``owner`` (a claim's value) is a test run on this machine that has ended."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def candidate_databases(url: str) -> list[int]:
    """The Redis database numbers a test run may claim: the URL's own, those above it, then those below it
    but 0 (where a real fakewatch keeps its queues by default) unless the URL names 0."""
    from redis.connection import parse_url

    first = int(parse_url(url).get("db", 0))
    return [first, *range(first + 1, 16), *range(1, first)]


def with_database(url: str, number: int) -> str:
    base, _, _ = url.rpartition("/") if url.count("/") > 2 else (url, "", "")
    return f"{base}/{number}"


def claim_redis_db(url: str = REDIS_URL, owner: str | None = None) -> str:
    """The URL of a Redis database this test run has to itself on ``url``'s server.

    The first candidate database whose claim key this run sets (``SET NX``) is taken, skipping databases
    that hold keys but no claim (someone's data); a claim whose run on this machine has ended is taken over.
    The claim is released, and its database emptied, when the run exits."""
    import redis

    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    for number in candidate_databases(url):
        client = redis.Redis.from_url(with_database(url, number), socket_connect_timeout=1)
        try:
            if client.set(CLAIM_KEY, owner, nx=True, ex=CLAIM_SECONDS):
                if client.dbsize() > 1:  # keys without a claim: not a test database, leave it alone
                    client.eval(_RELEASE, 1, CLAIM_KEY, owner)
                    continue
                return with_database(url, number)
            held = client.get(CLAIM_KEY)
            if held is not None and _gone(held.decode()) and client.eval(
                    _TAKE_OVER, 1, CLAIM_KEY, held, owner, CLAIM_SECONDS):
                client.eval(_FLUSH, 1, CLAIM_KEY)
                return with_database(url, number)
        except redis.ResponseError:  # "DB index is out of range": the server has fewer databases
            break
        finally:
            client.close()
    raise RuntimeError(f"every Redis database on {url} is claimed by another test run")


def release_redis_db(url: str) -> None:
    """Empty a claimed database and give its claim up (only if this run still holds it)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        owner = client.get(CLAIM_KEY)
        if owner is not None and owner.decode().split(":")[:2] == [socket.gethostname(), str(os.getpid())]:
            client.eval(_FLUSH, 1, CLAIM_KEY)
            client.eval(_RELEASE, 1, CLAIM_KEY, owner)
    except redis.RedisError:
        pass
    finally:
        client.close()


def redis_or_skip(url: str = REDIS_URL) -> str:
    """This run's own Redis database on ``url``'s server (claimed on first use), or a skip."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {url} ({exc}); start redis-server or set FAKEWATCH_TEST_REDIS_URL")
    if url not in _claimed:
        _claimed[url] = claim_redis_db(url)
        atexit.register(release_redis_db, _claimed[url])
    redis.Redis.from_url(_claimed[url]).expire(CLAIM_KEY, CLAIM_SECONDS)
    return _claimed[url]


def flush_redis(url: str) -> None:
    """Empty a Redis database, keeping the run's claim on it."""
    import redis

    redis.Redis.from_url(url).eval(_FLUSH, 1, CLAIM_KEY)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin_url = make_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({exc}); start it or set FAKEWATCH_TEST_POSTGRES_URL")
    name = f"fakewatch_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"  # unique per test, whatever else runs
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class FakewatchProcess:
    """A `fakewatch` command as a real subprocess in its own process group, logging to a file."""

    def __init__(self, arguments: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "fakewatch.cli", *arguments],
                                        env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the command and every process it started: no chance to acknowledge or requeue anything."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def stop(self, grace: float = 30) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


class WorkerProcess(FakewatchProcess):
    """`fakewatch worker` (its supervisor, consumer and pool)."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 1, pool: str = "prefork") -> None:
        super().__init__(["worker", "--queues", "cpu", "--concurrency", str(concurrency), "--pool", pool], env,
                         log_path)


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: /proc), for killing a worker's consumer or pool process."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            pass
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private redis-server on its own port, so a test can restart it."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed; the broker-restart test needs to run its own")
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # abrupt: queued messages are lost, as in a crash without persistence
            self.process.wait(10)
            self.process = None


class TcpProxy:
    """Forwards a local port to a server; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.open = threading.Event()
        self.open.set()
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                    connection.close()
                except OSError:
                    pass
            self.connections.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()
