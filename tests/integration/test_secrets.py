"""No password reaches a terminal or a log: every command's output is searched for a planted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from fakewatch.cli import cli
from tests.integration.conftest import write_photos
from tests.integration.services import child_pids, free_port

PLANTED = "pl4nted-S3cret"


def test_a_planted_password_never_appears_in_any_output(tmp_path: Path, env: dict[str, str]) -> None:
    dead_broker, dead_database = free_port(), free_port()
    secret_env = {**env, "FAKEWATCH_BROKER_URL": f"redis://:{PLANTED}@127.0.0.1:{dead_broker}/0",
                  "FAKEWATCH_DATABASE_URL": f"postgresql+psycopg://fw:{PLANTED}@127.0.0.1:{dead_database}/fw",
                  "FAKEWATCH_RETRY_MAX_DELAY": "1"}
    write_photos(tmp_path / "in", 2)
    outputs = []
    for args in (["settings"], ["status"], ["stats"], ["results"], ["db", "upgrade"], ["sweep"],
                 ["enqueue", str(tmp_path / "in")], ["-v", "scan", str(tmp_path / "in")]):
        result = CliRunner().invoke(cli, args, env=secret_env, obj={})
        outputs.append(result.output + repr(result.exception))
    sqlite_env = {**secret_env, "FAKEWATCH_DATABASE_URL": ""}  # the broker alone is unreachable now
    one_file = str(next((tmp_path / "in").iterdir()))
    for args in (["enqueue", str(tmp_path / "in")], ["status"], ["settings"], ["show", one_file]):
        result = CliRunner().invoke(cli, args, env=sqlite_env, obj={})
        outputs.append(result.output + repr(result.exception))
    process = subprocess.run([sys.executable, "-m", "fakewatch.cli", "-v", "enqueue", str(tmp_path / "in")],
                             env={**sqlite_env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    outputs.append(process.stdout + process.stderr)  # real log handlers, real stderr
    outputs.append(worker_output(sqlite_env))
    outputs.append(console_output({key: value for key, value in sqlite_env.items() if value}))
    everything = "\n".join(outputs)
    assert "***" in everything and "127.0.0.1" in everything  # the URLs were shown, masked
    assert PLANTED not in everything


def worker_output(env: dict[str, str]) -> str:
    """A real `fakewatch worker` failing to reach its broker for a while: its log, and its processes' argv."""
    worker = subprocess.Popen([sys.executable, "-m", "fakewatch.cli", "worker", "--pool", "solo"],
                              env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(8)
    command_lines = [Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                     for pid in [worker.pid, *child_pids(worker.pid)] if Path(f"/proc/{pid}/cmdline").exists()]
    os.killpg(worker.pid, signal.SIGKILL)
    output, _ = worker.communicate(timeout=30)
    assert "Cannot connect to" in output or "Connection refused" in output, output[-2000:]
    return output + "\n".join(command_lines)


def console_output(env: dict[str, str]) -> str:
    """The web console's pages and API answers, with a broker URL that carries the password."""
    from fastapi.testclient import TestClient

    from fakewatch.config import load_settings
    from fakewatch.web.app import create_app

    settings = load_settings(env={**env, "FAKEWATCH_API_TOKEN": PLANTED + "-token"})
    answers = []
    with TestClient(create_app(settings, settings.api_token), base_url="http://127.0.0.1:8000") as client:
        auth = {"Authorization": f"Bearer {settings.api_token}"}
        for path in ("/status", "/api/v1/status", "/api/v1/metrics", "/results", "/classifiers", "/check"):
            response = client.get(path, headers=auth)
            assert response.status_code == 200, (path, response.text[-500:])
            answers.append(response.text.replace(settings.api_token, "TOKEN"))  # the token itself is expected
    result = CliRunner().invoke(cli, ["settings"], env={**env, "FAKEWATCH_API_TOKEN": PLANTED}, obj={})
    assert "api_token = '***'" in result.output
    return "\n".join(answers) + result.output


def test_enqueue_with_the_broker_down_exits_3_and_leaves_rows_unstamped(tmp_path: Path, env: dict[str, str]) -> None:
    from sqlalchemy import select

    from fakewatch.config import load_settings
    from fakewatch.db.session import Database
    from fakewatch.db.tables import Image

    write_photos(tmp_path / "in", 3)
    down = {**env, "FAKEWATCH_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0", "FAKEWATCH_RETRY_MAX_DELAY": "1"}
    result = CliRunner().invoke(cli, ["enqueue", str(tmp_path / "in")], env=down, obj={})
    assert result.exit_code == 3, result.output
    assert "could not be queued" in result.output and "stay pending" in result.output
    settings = load_settings(env={key: value for key, value in down.items() if value})
    with Database(settings.resolved_database_url).session() as session:
        rows = session.execute(select(Image.status, Image.queued_at)).all()
    assert len(rows) == 3 and all(status == "pending" and queued is None for status, queued in rows)
