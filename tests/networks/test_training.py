"""Training end to end on generated images (TensorFlow): artifact, card, one loading path, evaluation, CLI."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from fakewatch import imaging
from fakewatch.classifiers.keras_runtime import KerasClassifier
from fakewatch.cli import cli
from fakewatch.errors import IncompatibleClassifier
from fakewatch.registry import CARD_FILE, read_version
from fakewatch.training.dataset import load_dataset
from fakewatch.training.train import input_pipeline
from tests.conftest import default_limits

pytestmark = pytest.mark.slow


def test_tiny_training_produces_a_loadable_artifact_with_a_valid_card(tiny_classifier) -> None:  # type: ignore[no-untyped-def]
    version = read_version(tiny_classifier.path)  # validates the card and the weights' hash
    card = version.card
    assert card["architecture"] == "cnn" and card["input_spec"]["size"] == 32
    assert card["training_data"]["counts"]["train"] == {"real": 60, "fake": 60}
    assert 0 < card["threshold"] < 1 and card["temperature"] > 0
    for key in ("accuracy", "roc_auc", "f1", "ece", "confusion_matrix", "per_class"):
        assert key in card["metrics"]["clean"]
    assert {"jpeg_q75", "downscale_2x"} <= set(card["metrics"])
    for plot in ("training_curves.png", "confusion_matrix.png", "roc.png", "reliability.png", "metrics.json"):
        assert (version.path / plot).stat().st_size > 1000, plot
    with zipfile.ZipFile(version.weights) as artifact:  # weights only: no optimizer state to ship
        with h5py.File(io.BytesIO(artifact.read("model.weights.h5"))) as weights:
            assert "layers" in weights and "optimizer" not in weights
    classifier = KerasClassifier(version)
    # the generated classes are easy: the tiny classifier must have learned them
    assert card["metrics"]["clean"]["accuracy"] >= 0.9
    p_fake = classifier.predict(np.zeros((3, 32, 32, 3), dtype=np.uint8))
    assert p_fake.shape == (3,) and np.all((p_fake >= 0) & (p_fake <= 1))


def test_training_and_scanning_see_identical_arrays(labelled_folder: Path) -> None:
    spec = imaging.InputSpec(size=24)  # forces a resize, so the resize method must agree too
    dataset = load_dataset(labelled_folder, spec, default_limits(), valid_fraction=0.2, test_fraction=0.2)
    split = dataset.splits["valid"]
    pipeline_batch = next(iter(input_pipeline(split, batch_size=len(split), training=False, seed=0)))[0].numpy()
    for index, path in enumerate(split.paths):
        scanner_array = imaging.load_file(path, spec, default_limits())
        assert np.array_equal(split.images[index], scanner_array)
        assert np.array_equal(pipeline_batch[index], scanner_array.astype(np.float32))


def test_runtime_predictions_match_keras(tiny_classifier) -> None:  # type: ignore[no-untyped-def]
    import keras

    classifier = KerasClassifier(tiny_classifier, batch_size=7)
    images = np.random.default_rng(0).integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    model = keras.saving.load_model(tiny_classifier.weights, compile=False)
    logits = keras.Model(model.inputs, model.get_layer("logit").output)(images.astype(np.float32)).numpy().ravel()
    expected = 1 / (1 + np.exp(-logits / tiny_classifier.temperature))
    assert np.allclose(classifier.predict(images), expected, atol=1e-5)


def test_card_that_disagrees_with_the_weights_is_refused(tiny_classifier, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from fakewatch.registry import write_card

    copy = tmp_path / "edited"
    shutil.copytree(tiny_classifier.path, copy)
    card = json.loads((copy / CARD_FILE).read_text())
    card["input_spec"]["size"] = 64
    write_card(copy, card)  # a consistent hash, but the network takes 32x32
    with pytest.raises(IncompatibleClassifier, match="input"):
        KerasClassifier(read_version(copy))


def test_evaluate_and_classifiers_commands(tiny_classifier, labelled_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_CLASSIFIER": str(tiny_classifier.path)}
    runner = CliRunner()
    out = tmp_path / "report"
    result = runner.invoke(cli, ["evaluate", str(labelled_folder), "--out", str(out)], env=env, obj={})
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clean"]["count"] == 200 and metrics["data"]["evaluated_split"] == "all"
    assert (out / "roc.png").exists() and (out / "reliability.png").exists()

    shown = runner.invoke(cli, ["classifiers", "show", "--json"], env=env, obj={})
    assert json.loads(shown.stdout)["version"] == tiny_classifier.version
    registry = tmp_path / "home" / "classifiers"
    import shutil

    shutil.copytree(tiny_classifier.path, registry / tiny_classifier.version)
    env.pop("FAKEWATCH_CLASSIFIER")
    activated = runner.invoke(cli, ["classifiers", "activate", tiny_classifier.version], env=env, obj={})
    assert activated.exit_code == 0, activated.output
    listing = runner.invoke(cli, ["classifiers", "list"], env=env, obj={}).stdout
    assert f"* {tiny_classifier.version}" in listing.replace("*  ", "* ")


def test_train_command_end_to_end(labelled_folder: Path, tmp_path: Path) -> None:
    env = {"FAKEWATCH_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(cli, ["train", str(labelled_folder), "--arch", "resnet", "--width", "8",
                                      "--epochs", "2", "--batch-size", "32", "--valid-fraction", "0.2",
                                      "--test-fraction", "0.2", "--activate"], env=env, obj={})
    assert result.exit_code == 0, result.output
    assert "published" in result.stdout and "(active)" in result.stdout
    versions = list((tmp_path / "home" / "classifiers").glob("resnet-*"))
    assert len(versions) == 1
    card = read_version(versions[0]).card
    assert card["training"]["command"].startswith("fakewatch train")
    assert json.loads((tmp_path / "home" / "classifiers" / "ACTIVE").read_text()) == {"thumbnail": card["version"]}


def test_published_versions_carry_a_checked_onnx_export(tiny_classifier) -> None:  # type: ignore[no-untyped-def]
    from fakewatch.classifiers.onnx_runtime import OnnxClassifier

    export = tiny_classifier.export
    assert export["format"] == "onnx" and export["max_abs_delta_p_fake"] <= 1e-4
    assert export["check_images"] > 0 and (tiny_classifier.path / "check_batch.npy").is_file()
    images = np.random.default_rng(5).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    assert np.abs(OnnxClassifier(tiny_classifier).predict(images)
                  - KerasClassifier(tiny_classifier).predict(images)).max() <= 1e-4


def test_a_version_without_export_runs_through_keras_until_exported(tiny_classifier, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    from fakewatch.classifiers.loading import load
    from fakewatch.registry import write_card

    old = tmp_path / "old-version"
    shutil.copytree(tiny_classifier.path, old)
    (old / "classifier.onnx").unlink()
    card = json.loads((old / CARD_FILE).read_text())
    del card["export"]
    write_card(old, card)
    assert isinstance(load(read_version(old), runtime="lite"), KerasClassifier)
    assert "has no ONNX export" in caplog.text

    result = CliRunner().invoke(cli, ["classifiers", "export", str(old)], env={"FAKEWATCH_HOME": str(tmp_path)},
                                obj={})
    assert result.exit_code == 0, result.output
    assert "largest |delta p_fake|" in result.stdout
    assert type(load(read_version(old), runtime="lite")).__name__ == "OnnxClassifier"
