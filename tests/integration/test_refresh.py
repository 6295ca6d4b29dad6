"""Refresh end to end on tiny data: labels arrive, a candidate is trained and gated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fakewatch.cli import cli
from fakewatch.config import load_settings
from fakewatch.registry import Registry
from tests.conftest import make_labelled_folder, noisy_image, smooth_image, write_image

pytestmark = pytest.mark.slow  # trains candidates with TensorFlow


def new_generator_fake(rng: np.random.Generator) -> np.ndarray:
    """A new generator's output the active classifier calls real: smooth, but with a tell-tale bright patch."""
    image = smooth_image(rng)
    image[:10, :10] = 250
    return image


def _setup(tmp_path: Path, tiny_classifier, labelled_folder: Path, **settings: str) -> tuple[dict, CliRunner]:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    shutil.copytree(tiny_classifier.path, home / "classifiers" / tiny_classifier.version)
    benchmark = make_labelled_folder(tmp_path / "benchmark", per_class=40, seed=11)
    env = {"FAKEWATCH_HOME": str(home), "FAKEWATCH_BENCHMARK_DIR": str(benchmark),
           "FAKEWATCH_REFRESH_MIN_LABELS": "30", "FAKEWATCH_REFRESH_EPOCHS": "8",
           "FAKEWATCH_REFRESH_TOLERANCE": "0.1", **settings}
    runner = CliRunner()
    assert runner.invoke(cli, ["classifiers", "activate", tiny_classifier.version], env=env, obj={}).exit_code == 0
    return env, runner


@pytest.mark.parametrize("mode", ["scratch", "finetune"])
def test_new_labels_train_a_candidate_that_the_gate_promotes(tmp_path: Path, tiny_classifier, labelled_folder: Path,
                                                             mode: str) -> None:  # type: ignore[no-untyped-def]
    env, runner = _setup(tmp_path, tiny_classifier, labelled_folder, FAKEWATCH_BASE_DATA=str(labelled_folder),
                         FAKEWATCH_REFRESH_MODE=mode)
    rng = np.random.default_rng(21)
    scans = tmp_path / "scans"
    fakes = [write_image(scans / f"new_{index}.jpg", new_generator_fake(rng), quality=95) for index in range(40)]
    reals = [write_image(scans / f"photo_{index}.jpg", smooth_image(rng), quality=95) for index in range(10)]
    assert runner.invoke(cli, ["scan", str(scans)], env=env, obj={}).exit_code == 0

    too_early = runner.invoke(cli, ["refresh"], env=env, obj={})
    assert too_early.exit_code == 0 and "skipped" in too_early.stdout  # nothing labelled yet

    for path in fakes[:20]:  # analysts label some in the database...
        assert runner.invoke(cli, ["label", str(path), "--fake"], env=env, obj={}).exit_code == 0
    inbox = Path(env["FAKEWATCH_HOME"]) / "inbox"
    for path in fakes[20:]:  # ...and drop others into the inbox
        (inbox / "fake").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, inbox / "fake" / path.name)
    for path in reals:
        assert runner.invoke(cli, ["label", str(path), "--real"], env=env, obj={}).exit_code == 0

    result = runner.invoke(cli, ["refresh"], env=env, obj={})
    assert result.exit_code == 0, result.output
    registry = Registry(load_settings(env=env))
    candidate = next(version for version in registry.versions() if version.gate)
    counts = candidate.card["training_data"]["counts"]
    assert sum(split["fake"] for split in counts.values()) > 100  # the 100 base fakes, extended by new ones
    if mode == "finetune":  # a gentle fine-tune: it must start from the active version; the gate decides
        assert candidate.card["parent"] == tiny_classifier.version
        assert candidate.gate["comparison"]["active"]["version"] == tiny_classifier.version
        return
    assert "refresh promoted" in result.stdout, result.stdout
    active = registry.resolve("thumbnail")
    assert active.version != tiny_classifier.version and active.gate["status"] == "promoted"
    comparison = active.gate["comparison"]
    assert comparison["candidate"]["new_data"]["accuracy"] > comparison["active"]["new_data"]["accuracy"]
    trainset = json.loads((Path(env["FAKEWATCH_HOME"]) / "trainsets" / "1.json").read_text())
    assert len(trainset["items"]) == 50  # 20 analyst fakes + 20 inbox fakes + 10 reals, each stored once
    assert len(list((Path(env["FAKEWATCH_HOME"]) / "trainsets" / "objects").rglob("*.jpg"))) == 50

    again = runner.invoke(cli, ["refresh"], env=env, obj={})
    assert "skipped" in again.stdout  # nothing new: nothing copied or trained twice
    listing = runner.invoke(cli, ["classifiers", "list"], env=env, obj={}).stdout
    assert active.version in listing and "active" in listing


def test_a_worse_candidate_is_kept_as_rejected(tmp_path: Path, tiny_classifier,
                                               labelled_folder: Path) -> None:  # type: ignore[no-untyped-def]
    env, runner = _setup(tmp_path, tiny_classifier, labelled_folder, FAKEWATCH_REFRESH_MODE="scratch")
    rng = np.random.default_rng(5)
    inbox = Path(env["FAKEWATCH_HOME"]) / "inbox"
    for index in range(120):  # ordinary images with shuffled labels
        label = "fake" if rng.random() < 0.5 else "real"
        write_image(inbox / label / f"{index}.jpg", (noisy_image if index % 2 else smooth_image)(rng), quality=95)
    result = runner.invoke(cli, ["refresh"], env=env, obj={})
    assert result.exit_code == 0, result.output
    assert "refresh rejected" in result.stdout, result.stdout
    registry = Registry(load_settings(env=env))
    assert registry.resolve("thumbnail").version == tiny_classifier.version  # the active one stays
    rejected = [version for version in registry.versions() if version.gate]
    assert len(rejected) == 1 and rejected[0].gate["status"] == "rejected"
    assert "rejected" in runner.invoke(cli, ["classifiers", "list"], env=env, obj={}).stdout


def _photo(rng: np.random.Generator, fake: bool) -> np.ndarray:
    """A photo-sized image (the photo domain takes 128 px and up): smooth for real, noisy for fake."""
    height, width = int(rng.integers(160, 260)), int(rng.integers(160, 260))
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return rgb if fake else np.repeat(np.repeat(rgb[::8, ::8], 8, axis=0), 8, axis=1)[:height, :width]


def _photo_folder(root: Path, per_group: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for label, groups in (("real", ("cam_a", "cam_b")), ("fake", ("gen_x", "gen_y"))):
        for group in groups:
            for index in range(per_group):
                write_image(root / label / group / f"{group}_{index}.jpg", _photo(rng, label == "fake"), quality=92)
    return root


def test_refresh_works_per_domain_and_retrains_the_photo_classifier_on_photos_alone(
        tmp_path: Path, tiny_classifier, labelled_folder: Path) -> None:  # type: ignore[no-untyped-def]
    photo_benchmark = _photo_folder(tmp_path / "photo-benchmark", per_group=5, seed=1)
    photo_base = _photo_folder(tmp_path / "photo-base", per_group=4, seed=2)
    env, runner = _setup(tmp_path, tiny_classifier, labelled_folder, FAKEWATCH_REFRESH_MIN_LABELS="1000",
                         FAKEWATCH_REFRESH_EPOCHS="2",
                         FAKEWATCH_BENCHMARK_DIR=f"thumbnail={tmp_path / 'benchmark'};photo={photo_benchmark}",
                         FAKEWATCH_BASE_DATA=f"photo={photo_base}")
    registry = Registry(load_settings(env=env))
    active_photo = registry.resolve("photo")
    inbox = Path(env["FAKEWATCH_HOME"]) / "inbox"
    rng = np.random.default_rng(8)
    for index in range(16):  # photos, which the photo classifier judges...
        label = "fake" if index % 2 else "real"
        write_image(inbox / label / f"photo_{index}.jpg", _photo(rng, label == "fake"), quality=90)
    for index in range(12):  # ...and thumbnails, which it never sees
        label = "fake" if index % 2 else "real"
        write_image(inbox / label / f"thumb_{index}.jpg", (noisy_image if index % 2 else smooth_image)(rng),
                    quality=95)

    counted = runner.invoke(cli, ["refresh", "--domain", "all"], env=env, obj={})
    assert counted.exit_code == 0, counted.output
    assert "skipped (photo): 16 new labelled images for the photo classifier" in counted.stdout
    assert "skipped (thumbnail): 12 new labelled images for the thumbnail classifier" in counted.stdout

    result = runner.invoke(cli, ["refresh", "--domain", "photo", "--force"], env=env, obj={})
    assert result.exit_code == 0, result.output
    registry = Registry(load_settings(env=env))
    (candidate,) = [version for version in registry.versions() if version.gate]
    assert candidate.domain.name == "photo" and candidate.spec.crops == active_photo.spec.crops
    assert candidate.card["parent"] == active_photo.version  # fine-tuned from the active photo classifier
    gate_record = candidate.gate
    assert gate_record["domain"] == "photo" and gate_record["status"] in ("promoted", "rejected")
    counts = candidate.card["training_data"]["counts"]
    trained_on = sum(split["real"] + split["fake"] for split in counts.values())
    assert trained_on == 16 - gate_record["new_data_held_out"] + 16  # its photos and the base, no thumbnails
    comparison = gate_record["comparison"]
    assert comparison["active"]["benchmark"]["count"] == comparison["candidate"]["benchmark"]["count"] == 20
    assert comparison["candidate"]["new_data"]["count"] == gate_record["new_data_held_out"]
    assert (candidate.path / "classifier.onnx").is_file() or any(candidate.path.glob("*.onnx"))

    no_photo_benchmark = {**env, "FAKEWATCH_BENCHMARK_DIR": f"thumbnail={tmp_path / 'benchmark'}"}
    partial = runner.invoke(cli, ["refresh", "--domain", "all"], env=no_photo_benchmark, obj={})
    assert partial.exit_code == 0 and "skipped (photo): no benchmark_dir for the photo domain" in partial.stdout
    again = runner.invoke(cli, ["refresh", "--domain", "all"], env=env, obj={})
    assert "skipped (photo): 0 new labelled images for the photo classifier" in again.stdout  # trained on them
    assert "skipped (thumbnail): 12 new labelled images" in again.stdout  # still new to the thumbnail one


def test_a_scratch_photo_refresh_keeps_the_parents_network_but_restarts_its_logit_layer(tmp_path: Path) -> None:
    from fakewatch.training.photo import parent_network

    active = Registry(load_settings({"home": str(tmp_path / "home")}, env={})).resolve("photo")
    kept, fresh = parent_network(active, fresh_head=False, seed=3), parent_network(active, fresh_head=True, seed=3)
    assert not np.allclose(kept.get_layer("logit").get_weights()[0], fresh.get_layer("logit").get_weights()[0])
    assert not fresh.get_layer("logit").get_weights()[1].any()
    for layer in kept.layers:
        if layer.name != "logit":
            for mine, theirs in zip(layer.get_weights(), fresh.get_layer(layer.name).get_weights()):
                assert np.array_equal(mine, theirs), layer.name
