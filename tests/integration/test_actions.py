"""Verdict actions: quarantine, a command hook and a webhook, with hostile file names, run once each."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from fakewatch.actions import STALE_MARGIN, VerdictActions
from fakewatch.config import load_settings
from fakewatch.db.session import Database
from fakewatch.db.tables import Action, Image
from fakewatch.imaging import encode_jpeg
from fakewatch.names import to_fs
from tests.conftest import wait_until
from tests.hostile import ESCAPES
from tests.integration.conftest import write_photos, write_sleeping_hook
from tests.integration.services import FakewatchProcess, free_port

EVERY_LABEL = "fake,real,uncertain"  # the stand-in classifier's labels are arbitrary: act on all of them
NAMES = [b"plain.jpg", b"x\xff\xfe.jpg", ("t" + ESCAPES + ".jpg").encode(), b"new\nline.jpg", b"-rf.jpg",
         b"$(touch pwned).jpg", b"; rm -rf ~.jpg"]


def _hostile_folder(folder: Path) -> list[bytes]:
    folder.mkdir(parents=True)
    rng_photos = write_photos(folder.parent / "source", len(NAMES), seed=31)
    paths = []
    for name, source in zip(NAMES, rng_photos):
        target = os.path.join(os.fsencode(folder), name)
        with open(target, "wb") as handle:
            handle.write(source.read_bytes())
        paths.append(target)
    return paths


def _rows(env: dict[str, str]) -> tuple[list[Image], list[Action]]:
    database = Database(f"sqlite:///{env['FAKEWATCH_HOME']}/fakewatch.db")
    with database.session() as session:
        return list(session.scalars(select(Image))), list(session.scalars(select(Action).order_by(Action.id)))


def test_quarantine_moves_flagged_files_without_overwriting(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    originals = _hostile_folder(tmp_path / "in")
    jail = tmp_path / "quarantine"
    jail.mkdir()
    (jail / "plain.jpg").write_bytes(b"an earlier, different file")
    env.update({"FAKEWATCH_QUARANTINE_DIR": str(jail), "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    run_cli("scan", str(tmp_path / "in"))
    assert not any(os.path.lexists(path) for path in originals)  # every one moved
    assert (jail / "plain.jpg").read_bytes() == b"an earlier, different file"  # never overwritten
    assert (jail / "plain (2).jpg").exists()
    images, actions = _rows(env)
    assert len(actions) == len(NAMES) and {action.status for action in actions} == {"done"}
    for image in images:
        assert os.path.dirname(to_fs(image.path)) == str(jail)
        assert os.fsencode(to_fs(image.original_path or "")) in originals
        assert os.path.exists(to_fs(image.path))
    shown = json.loads(run_cli("show", "--json", str(images[0].id)).stdout)
    assert shown["actions"][0]["action"] == "quarantine" and shown["original_path"]
    settings = load_settings(env={key: value for key, value in env.items() if value})
    VerdictActions(settings, Database(settings.resolved_database_url)).after([image.id for image in images], "hash-a")
    assert len(_rows(env)[1]) == len(NAMES)  # the same verdicts again: nothing runs twice


def test_quarantine_across_file_systems_copies_then_unlinks(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    (photo,) = write_photos(tmp_path / "in", 1, seed=32)
    jail = shm / f"fakewatch-test-{os.getpid()}"
    try:
        env.update({"FAKEWATCH_QUARANTINE_DIR": str(jail), "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
        data = photo.read_bytes()
        run_cli("scan", str(tmp_path / "in"))
        assert not photo.exists() and (jail / photo.name).read_bytes() == data
    finally:
        for leftover in jail.glob("*"):
            leftover.unlink()
        if jail.exists():
            jail.rmdir()


def test_the_command_hook_gets_the_exact_path_and_the_verdict(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    originals = _hostile_folder(tmp_path / "in")
    log = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text("import json, os, sys\n"
                    f"with open({str(log)!r}, 'a') as out:\n"
                    "    out.write(json.dumps({'path': os.fsencode(sys.argv[-1]).hex(), 'argc': len(sys.argv),\n"
                    "        'env': {k: v for k, v in os.environ.items()\n"
                    "                if k.startswith('FAKEWATCH_VERDICT_')}}) + '\\n')\n")
    env.update({"FAKEWATCH_ACTION_COMMAND": f"{sys.executable} {hook}", "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    run_cli("scan", str(tmp_path / "in"))
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(bytes.fromhex(call["path"]) for call in calls) == sorted(originals)
    assert all(call["argc"] == 2 for call in calls)  # no shell split a name into several arguments
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert {call["env"]["FAKEWATCH_VERDICT_LABEL"] for call in calls} <= {"fake", "real", "uncertain"}
    assert all(call["env"]["FAKEWATCH_VERDICT_CLASSIFIER"] == "hash-a" for call in calls)
    assert {action.status for action in _rows(env)[1]} == {"done"}


def test_a_hanging_command_is_killed_and_recorded(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 1, seed=33)
    env.update({"FAKEWATCH_ACTION_COMMAND": f"{sys.executable} -c \"import time; time.sleep(30)\"",
                "FAKEWATCH_ACTION_LABELS": EVERY_LABEL,
                "FAKEWATCH_ACTION_TIMEOUT": "0.5"})
    run_cli("scan", str(tmp_path / "in"))
    images, (action,) = _rows(env)
    assert images[0].status == "done"  # classification was not held up by the hook
    assert action.status == "failed" and "timed out" in (action.detail or "")


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []  # type: ignore[type-arg]
    fail_first = 0

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
        else:
            _Hook.received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_webhook_posts_the_row_and_retries(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received, _Hook.fail_first = [], 1
    try:
        path = tmp_path / "in" / ("odd\x1b[2J" + ".jpg")
        path.parent.mkdir()
        path.write_bytes(encode_jpeg(_pixels(), 90))
        env.update({"FAKEWATCH_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/verdicts",
                    "FAKEWATCH_ACTION_LABELS": EVERY_LABEL, "FAKEWATCH_RETRY_MAX_DELAY": "0.1"})
        run_cli("scan", str(tmp_path / "in"))
        (body,) = _Hook.received
        assert body["event"] == "verdict" and body["image"]["path"] == str(path)
        assert body["image"]["classifier"] == "hash-a" and body["image"]["label"]
        (action,) = _rows(env)[1]
        assert (action.status, action.attempts) == ("done", 2)
    finally:
        server.shutdown()


def test_a_dead_webhook_is_recorded_and_never_blocks(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 2, seed=34)
    env.update({"FAKEWATCH_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/", "FAKEWATCH_WEBHOOK_RETRIES": "1",
                "FAKEWATCH_ACTION_LABELS": EVERY_LABEL, "FAKEWATCH_RETRY_MAX_DELAY": "0.1"})
    run_cli("scan", str(tmp_path / "in"))
    images, actions = _rows(env)
    assert {image.status for image in images} == {"done"}
    assert [(action.status, action.attempts) for action in actions] == [("failed", 2), ("failed", 2)]
    assert all("cannot reach" in (action.detail or "") for action in actions)


def _pixels():  # type: ignore[no-untyped-def]
    import numpy as np

    return np.random.default_rng(35).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def _settings(env: dict[str, str]):  # type: ignore[no-untyped-def]
    return load_settings(env={key: value for key, value in env.items() if value})


def _statuses(env: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(action.action, action.status, action.detail or "") for action in _rows(env)[1]]


def test_a_quarantined_name_freed_on_disk_is_not_reused_while_a_row_holds_it(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    first, second = write_photos(tmp_path / "source", 2, seed=36)
    jail = tmp_path / "quarantine"
    env.update({"FAKEWATCH_QUARANTINE_DIR": str(jail), "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jpg").write_bytes(first.read_bytes())
    run_cli("scan", str(tmp_path / "in"))
    (jail / "x.jpg").unlink()  # an analyst deletes the quarantined file; its row keeps the name
    (tmp_path / "in" / "x.jpg").write_bytes(second.read_bytes())
    run_cli("scan", str(tmp_path / "in"))  # exit 0, no IntegrityError
    images, actions = _rows(env)
    assert [(action.status, action.detail) for action in actions] == [
        ("done", f"moved to {jail / 'x.jpg'}"), ("done", f"moved to {jail / 'x (2).jpg'}")]
    newest = max(images, key=lambda image: image.id)
    assert newest.path == str(jail / "x (2).jpg") and (jail / "x (2).jpg").read_bytes() == second.read_bytes()
    assert not (tmp_path / "in" / "x.jpg").exists() and not (jail / "x.jpg").exists()


def test_a_failed_move_is_recorded_and_never_left_running(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 1, seed=37)
    jail = tmp_path / "not-a-folder"
    env.update({"FAKEWATCH_QUARANTINE_DIR": str(jail / "below"), "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    jail.write_bytes(b"a file where the quarantine's parent should be")
    run_cli("scan", str(tmp_path / "in"))
    ((action, status, detail),) = _statuses(env)
    assert (action, status) == ("quarantine", "failed") and "Not a directory" in detail


@pytest.mark.parametrize("inside", ["the folder itself", "a link into it"])
def test_a_quarantine_folder_inside_the_scanned_folder_is_refused(tmp_path: Path, env, run_cli, inside: str) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 2, seed=38)
    if inside == "a link into it":
        (tmp_path / "in" / "flagged").mkdir()
        (tmp_path / "jail").symlink_to(tmp_path / "in" / "flagged")
        jail = tmp_path / "jail"
    else:
        jail = tmp_path / "in"
    env.update({"FAKEWATCH_QUARANTINE_DIR": str(jail), "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    for command in ("scan", "watch"):
        result = run_cli(command, str(tmp_path / "in"), expect=2)
        (line,) = result.output.strip().splitlines()
        assert "quarantine_dir" in line and "lies inside" in line and str(tmp_path / "in") in line
    assert not (tmp_path / "home" / "fakewatch.db").exists() or not _rows(env)[1]  # nothing moved, nothing run
    assert sorted(path.name for path in (tmp_path / "in").rglob("*.jpg")) == ["img_0000.jpg", "img_0001.jpg"]


def _judged_then_swapped(tmp_path: Path, env, run_cli, swap: str) -> tuple[Path, bytes]:  # type: ignore[no-untyped-def]
    """Scan one file (no actions yet), then put something else under its name; returns it and the secret."""
    (photo,) = write_photos(tmp_path / "in", 1, seed=39)
    env["FAKEWATCH_ACTION_LABELS"] = EVERY_LABEL
    run_cli("scan", str(tmp_path / "in"))
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$planted-hash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    photo.unlink()
    if swap == "symlink":
        photo.symlink_to(secret)
    elif swap == "content":
        write_photos(tmp_path / "other", 1, seed=40)[0].rename(photo)
    else:
        os.mkfifo(photo)
    return photo, secret.read_bytes()


@pytest.mark.parametrize("swap", ["symlink", "content", "fifo"])
@pytest.mark.parametrize("where", ["same file system", "other file system"])
def test_quarantine_moves_only_the_file_that_was_judged(tmp_path: Path, env, run_cli, swap: str, where: str) -> None:  # type: ignore[no-untyped-def]
    if where == "other file system":
        shm = Path("/dev/shm")
        if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("needs /dev/shm on a file system of its own")
        jail = shm / f"fakewatch-test-{os.getpid()}-{swap}"
    else:
        jail = tmp_path / "quarantine"
    photo, secret = _judged_then_swapped(tmp_path, env, run_cli, swap)
    before = os.lstat(photo)
    env["FAKEWATCH_QUARANTINE_DIR"] = str(jail)
    settings = _settings(env)
    images, _ = _rows(env)
    try:
        VerdictActions(settings, Database(settings.resolved_database_url)).after([images[0].id], "hash-a")
        ((action, status, detail),) = _statuses(env)
        assert (action, status) == ("quarantine", "skipped") and "not moved" in detail
        assert list(jail.glob("*")) == []  # nothing copied or linked into quarantine
        assert os.lstat(photo).st_ino == before.st_ino  # the newcomer stays where it is
        assert _rows(env)[0][0].path == str(photo)
        assert secret.startswith(b"root:")
    finally:
        for leftover in jail.glob("*"):
            leftover.unlink()
        if jail.exists():
            jail.rmdir()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:text/plain,hello", "ftp://127.0.0.1/drop",
                                 "gopher://127.0.0.1/", "http:///no-host"])
def test_a_webhook_url_other_than_http_is_refused_when_settings_are_read(tmp_path: Path, env, run_cli,
                                                                         url: str) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 1, seed=41)
    env.update({"FAKEWATCH_WEBHOOK_URL": url, "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    result = run_cli("scan", str(tmp_path / "in"), expect=2)
    (line,) = result.output.strip().splitlines()
    assert "webhook_url must be an http:// or https:// URL" in line
    assert not (tmp_path / "home" / "fakewatch.db").exists()  # refused before anything ran


class SlowHook(BaseHTTPRequestHandler):
    """A webhook receiver that takes ``delay`` seconds to answer."""

    delay = 0.0
    arrived: list[str] = []
    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SlowHook.arrived.append(body["image"]["path"])
        time.sleep(SlowHook.delay)
        SlowHook.received.append(body["image"]["path"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SlowHook.delay, SlowHook.arrived, SlowHook.received = 20.0, [], []
    yield server
    server.shutdown()


def test_a_slow_webhook_holds_up_a_scan_briefly_and_undelivered_ones_are_retried(
        tmp_path: Path, env, run_cli, slow_webhook: ThreadingHTTPServer) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 10, seed=42)
    env.update({"FAKEWATCH_WEBHOOK_URL": f"http://127.0.0.1:{slow_webhook.server_port}/",
                "FAKEWATCH_ACTION_LABELS": EVERY_LABEL})
    scan = FakewatchProcess(["scan", str(tmp_path / "in")], env, tmp_path / "scan.log")
    started = time.monotonic()
    assert scan.process.wait(60) == 0, scan.output()
    took = time.monotonic() - started
    assert took < 20, f"scan took {took:.1f} s to exit"
    statuses = [status for _, status, _ in _statuses(env)]
    assert statuses == ["pending"] * 10  # none delivered in time: all kept for a retry
    SlowHook.delay = 0.0
    settings = _settings(env)
    actions = VerdictActions(settings, Database(settings.resolved_database_url))  # a start retries them
    actions.close(30)
    assert [status for _, status, _ in _statuses(env)] == ["done"] * 10


def test_a_hook_killed_with_its_process_is_retried_once_at_the_next_start(tmp_path: Path, env, run_cli) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 1, seed=43)
    hook, calls = write_sleeping_hook(tmp_path)
    env.update({"FAKEWATCH_ACTION_COMMAND": f"{sys.executable} {hook}", "FAKEWATCH_ACTION_LABELS": EVERY_LABEL,
                "FAKEWATCH_ACTION_TIMEOUT": "1"})
    scan = FakewatchProcess(["scan", str(tmp_path / "in")], env, tmp_path / "scan.log")
    # the hook's line written, not only its file created: a kill between the two would lose the first call
    wait_until(lambda: calls.exists() and calls.read_text().endswith("\n"), 60)
    scan.kill()  # SIGKILL the scan and its hook mid-run
    assert _statuses(env)[0][1] == "running"
    run_cli("scan", str(tmp_path / "in"))  # too soon: the claim may still be alive
    assert _statuses(env)[0][1] == "running" and len(calls.read_text().splitlines()) == 1
    # scans until the claim's time (1 s + STALE_MARGIN) has passed and one of them retries it
    assert wait_until(lambda: run_cli("scan", str(tmp_path / "in")) and _statuses(env)[0][1] != "running",
                      1 + STALE_MARGIN + 30, interval=0.2)
    ((action, status, detail),) = _statuses(env)
    assert (action, status) == ("command", "done") and "exited 0" in detail
    assert len(calls.read_text().splitlines()) == 2
    run_cli("scan", str(tmp_path / "in"))  # done is done: never a third run
    assert len(calls.read_text().splitlines()) == 2
