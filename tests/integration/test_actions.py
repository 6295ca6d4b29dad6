"""Verdict actions: quarantine, a command hook and a webhook, with hostile file names, run once each."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from fakewatch.db.session import Database
from fakewatch.db.tables import Action, Image
from fakewatch.imaging import encode_jpeg
from fakewatch.names import to_fs
from tests.hostile import ESCAPES
from tests.integration.conftest import write_photos
from tests.integration.services import free_port

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
    shown = json.loads(run_cli("show", str(images[0].id)).stdout)
    assert shown["actions"][0]["action"] == "quarantine" and shown["original_path"]
    run_cli("scan", str(jail))  # the same verdicts again: nothing runs twice
    assert len(_rows(env)[1]) == len(NAMES)


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
