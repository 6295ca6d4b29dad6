"""What the layout promises: unit tests need no TensorFlow, and a distributed watcher never loads a classifier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.integration.conftest import write_photos
from tests.integration.services import flush_redis, redis_or_skip

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "fakewatch.classifiers.base", "fakewatch.classifiers.loading",
         "fakewatch.classifiers.keras_runtime", "fakewatch.classify.runtime")


def test_unit_tests_pass_with_tensorflow_and_keras_unimportable(tmp_path: Path) -> None:
    for name in ("tensorflow", "keras"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked for this run')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "error" not in result.stdout.splitlines()[-1]


WATCH_AND_REPORT_MODULES = """
import json, pathlib, sys
report = pathlib.Path(sys.argv[1])
sys.argv = ["fakewatch", "watch", sys.argv[2], "--stability-delay", "0.2"]
try:
    from fakewatch.cli import main
    main()
finally:
    report.write_text(json.dumps(sorted(sys.modules)))
"""


def test_distributed_watch_imports_neither_the_classifier_nor_tensorflow(tmp_path: Path) -> None:
    redis_url = redis_or_skip()
    flush_redis(redis_url)
    watched = tmp_path / "watched"
    watched.mkdir()
    database = tmp_path / "fakewatch.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAKEWATCH_")}
    env.update({"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_BROKER_URL": redis_url,
                "FAKEWATCH_DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(ROOT)})
    modules_file = tmp_path / "modules.json"
    daemon = subprocess.Popen([sys.executable, "-c", WATCH_AND_REPORT_MODULES, str(modules_file), str(watched)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not database.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (photo,) = write_photos(tmp_path / "camera", 1)
        photo.rename(watched / "dropped.jpg")
        engine = create_engine(f"sqlite:///{database}")
        queued = None
        while queued is None and time.monotonic() < deadline:
            try:
                with engine.connect() as connection:
                    queued = connection.execute(text("SELECT queued_at FROM images WHERE status = 'pending'")).scalar()
            except OperationalError:
                pass  # the schema is still being created
            time.sleep(0.1)
        engine.dispose()
        assert queued is not None, "the watcher did not record and queue the dropped file"
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
        flush_redis(redis_url)
    assert daemon.returncode == 0, output
    loaded = set(json.loads(modules_file.read_text()))
    assert "fakewatch.watcher.observer" in loaded and "fakewatch.broker" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.fixture(scope="module")
def scanned_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """A data folder that holds one scanned image, and the environment that points at it."""
    folder = tmp_path_factory.mktemp("scanned")
    (photo,) = write_photos(folder / "photos", 1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAKEWATCH_")}
    env.update({"FAKEWATCH_HOME": str(folder / "home"), "PYTHONPATH": str(ROOT)})
    subprocess.run([sys.executable, "-m", "fakewatch.cli", "-q", "scan", str(photo)], env=env, check=True,
                   capture_output=True, timeout=120)
    return env, photo


@pytest.mark.parametrize("command", [["settings"], ["stats"], ["results"], ["status"], ["show", "PHOTO"],
                                     ["label", "PHOTO", "--real"]])
def test_commands_that_do_not_classify_load_neither_a_classifier_nor_a_runtime(
        scanned_home: tuple[dict[str, str], Path], command: list[str]) -> None:
    env, photo = scanned_home
    command = [str(photo) if part == "PHOTO" else part for part in command]
    script = ("import json, sys\nfrom fakewatch.cli import cli\n"  # the group: main() skips teardown
              "try:\n    cli(obj={})\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
              "print(json.dumps(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {['fakewatch', *command]!r}\n{script}"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not loaded & {*HEAVY, "onnxruntime"}, sorted(loaded & {*HEAVY, "onnxruntime"})


def _console(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fakewatch.cli", *command], env=env, capture_output=True,
                          text=True, timeout=120)


def test_quick_commands_leave_early_with_their_output_exit_code_and_writes_intact(
        scanned_home: tuple[dict[str, str], Path]) -> None:
    """The console script leaves a quick command without the interpreter's teardown: what it printed, its
    exit code and what it wrote must survive that."""
    from click.testing import CliRunner

    from fakewatch.cli import cli

    env, photo = scanned_home
    in_process = CliRunner().invoke(cli, ["results", "--format", "json"], env=env, obj={})
    console = _console(env, "results", "--format", "json")
    assert console.returncode == 0 and console.stdout == in_process.stdout and json.loads(console.stdout)
    missing = _console(env, "show", "no-such-image.jpg")
    assert missing.returncode == 2 and "no image 'no-such-image.jpg'" in missing.stderr
    before = json.loads(_console(env, "show", str(photo)).stdout)["labels"]
    assert _console(env, "label", str(photo), "--fake", "--note", "quick exit").returncode == 0
    after = json.loads(_console(env, "show", str(photo)).stdout)["labels"]  # read back by another process
    assert len(after) == len(before) + 1 and after[-1]["label"] == "fake" and after[-1]["note"] == "quick exit"
