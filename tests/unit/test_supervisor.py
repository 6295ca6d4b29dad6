"""The worker supervisor: restarts a consumer after any exit it did not ask for, passes signals on."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from fakewatch.worker.supervisor import Supervisor, consumer_command, describe_exit


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "consumer.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_restarts_after_crashes_and_stops_when_the_consumer_stops_on_request(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    command = script(tmp_path, f"""
import pathlib, sys
runs = pathlib.Path({str(runs)!r})
count = len(runs.read_text()) if runs.exists() else 0
runs.write_text("x" * (count + 1))
sys.exit(1 if count < 2 else 0)  # crash twice, then stop cleanly
""")
    delays: list[int] = []
    supervisor = Supervisor(command, lambda failures: delays.append(failures) or 0.01)
    assert supervisor.run() == 0
    assert runs.read_text() == "xxx" and supervisor.restarts == 2
    assert delays == [1, 2]  # backs off: failures in a row are counted


def test_a_signal_reaches_the_consumer_and_ends_supervision(tmp_path: Path) -> None:
    marker = tmp_path / "got-term"
    command = script(tmp_path, f"""
import pathlib, signal, sys, time
def stop(signum, frame):
    pathlib.Path({str(marker)!r}).write_text(str(signum))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
pathlib.Path({str(marker)!r} + ".ready").write_text("")
time.sleep(60)
""")
    supervisor = Supervisor(command, lambda failures: 0.01)

    def send_term() -> None:
        deadline = time.monotonic() + 20
        while not Path(str(marker) + ".ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send_term, daemon=True).start()
    started = time.monotonic()
    assert supervisor.run() == 0
    assert time.monotonic() - started < 30
    assert marker.read_text() == str(int(signal.SIGTERM)) and supervisor.restarts == 0


def test_a_killed_consumer_is_started_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    command = script(tmp_path, f"""
import os, pathlib, signal
runs = pathlib.Path({str(runs)!r})
count = len(runs.read_text()) if runs.exists() else 0
runs.write_text("x" * (count + 1))
if count == 0:
    os.kill(os.getpid(), signal.SIGKILL)
""")
    supervisor = Supervisor(command, lambda failures: 0.01)
    assert supervisor.run() == 0 and supervisor.restarts == 1 and runs.read_text() == "xx"


def test_consumer_command_and_exit_descriptions() -> None:
    assert consumer_command("py", 2, ["--pool=solo"]) == ["py", "-m", "fakewatch.cli", "-vv", "worker", "--pool=solo",
                                                          "--no-restart"]
    assert describe_exit(-9) == "signal SIGKILL" and describe_exit(1) == "exit code 1"
