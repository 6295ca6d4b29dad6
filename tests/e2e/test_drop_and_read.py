"""A user's first minute: the real CLI, the shipped classifier, a folder of images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from fakewatch.config import load_settings
from fakewatch.registry import Registry
from tests.conftest import SHARED
from tests.integration.conftest import write_photos

pytestmark = pytest.mark.slow  # the shipped classifier runs through TensorFlow


def _env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAKEWATCH_")}
    return {**env, "FAKEWATCH_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _sample(tarball: Path, folder: Path, per_label: int) -> Path:
    """The first ``per_label`` real and fake images of a shared data set, under ``folder/{real,fake}``."""
    wanted = {"real": per_label, "fake": per_label}
    with tarfile.open(tarball) as archive:
        for member in archive:
            label = member.name.split("/")[-2] if member.isfile() else ""
            if wanted.get(label, 0) > 0:
                wanted[label] -= 1
                (folder / label).mkdir(parents=True, exist_ok=True)
                (folder / label / Path(member.name).name).write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
            if not any(wanted.values()):
                break
    return folder


def _fakewatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fakewatch.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_shipped_classifiers_are_the_defaults_and_valid() -> None:
    registry = Registry(load_settings({"home": "/nonexistent-home"}, env={}))
    assert set(registry.active_versions()) == {"thumbnail", "photo"}
    thumbnail = registry.resolve("thumbnail")  # validates card and weights hash
    assert thumbnail.builtin and thumbnail.domain.covers(32, 32) and not thumbnail.domain.covers(300, 300)
    assert thumbnail.card["metrics"]["clean"]["count"] > 4000
    assert thumbnail.weights.stat().st_size < 5 * 1024 * 1024  # a few MB at most
    photo = registry.resolve("photo")
    assert photo.builtin and photo.domain.covers(1024, 768) and not photo.domain.covers(100, 100)
    assert photo.spec.crops == "tiles" and photo.export is not None
    assert photo.card["metrics"]["heldout"]["totals"]["count"] > 50  # whole repositories never trained on
    assert photo.export_file().stat().st_size < 20 * 1024 * 1024


def test_watch_drop_a_file_and_read_the_verdict(tmp_path: Path) -> None:
    env = _env(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemon = subprocess.Popen([sys.executable, "-m", "fakewatch.cli", "watch", str(inbox), "--stability-delay", "0.5"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = ""
        assert daemon.stdout is not None
        for line in daemon.stdout:  # start-up (database, classifier, catch-up) ends with "watching ..."
            started += line
            if "watching" in line:
                break
        assert "watching" in started, started
        (photo,) = write_photos(tmp_path / "camera", 1)
        photo.rename(inbox / "holiday.jpg")
        deadline = time.monotonic() + 60
        rows: list[dict] = []
        while time.monotonic() < deadline and not (rows and rows[0]["label"]):
            result = _fakewatch(env, "results", "--format", "json")
            rows = [json.loads(line) for line in result.stdout.splitlines()]
            time.sleep(0.5)
        assert rows and rows[0]["path"] == str(inbox / "holiday.jpg")
        assert rows[0]["label"] in ("fake", "real", "uncertain")
        default = Registry(load_settings({"home": str(tmp_path / "home")}, env={})).resolve("thumbnail").version
        assert rows[0]["classifier"] == default
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, output
    assert "holiday.jpg" in started + output


@pytest.mark.skipif(not (SHARED / "data" / "cifake-train.tar.gz").exists(), reason="needs ../shared/data")
def test_scan_real_cifake_images(tmp_path: Path) -> None:
    folder = _sample(SHARED / "data" / "cifake-train.tar.gz", tmp_path / "cifake", 150)
    env = _env(tmp_path)
    assert _fakewatch(env, "scan", str(folder)).returncode == 0
    rows = [json.loads(line) for line in _fakewatch(env, "results", "--format", "json").stdout.splitlines()]
    assert len(rows) == 300
    correct = sum((row["p_fake"] >= row["threshold"]) == ("/fake/" in row["path"]) for row in rows)
    # a sanity check on real data (these files may include training images; the card has the test numbers)
    assert correct / len(rows) >= 0.85


@pytest.mark.skipif(not (SHARED / "data" / "faces-train.tar.gz").exists(), reason="needs ../shared/data")
def test_scan_real_faces_reaches_the_photo_classifier(tmp_path: Path) -> None:
    folder = _sample(SHARED / "data" / "faces-train.tar.gz", tmp_path / "faces", 40)
    env = _env(tmp_path)
    assert _fakewatch(env, "scan", str(folder)).returncode == 0
    rows = [json.loads(line) for line in _fakewatch(env, "results", "--format", "json").stdout.splitlines()]
    photo = Registry(load_settings({"home": str(tmp_path / "home")}, env={})).resolve("photo").version
    assert len(rows) == 80 and {row["classifier"] for row in rows} == {photo}
    correct = sum((row["p_fake"] >= row["threshold"]) == ("/fake/" in row["path"]) for row in rows)
    # a sanity check (these faces may include training images; the card has the test-carve numbers)
    assert correct / len(rows) >= 0.85
