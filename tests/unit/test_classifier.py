"""The decision rule, the pixel-hash engine, and loading by engine (all without TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakewatch.classifiers.base import calibrated
from fakewatch.classifiers.loading import load
from fakewatch.classifiers.pixel_hash import PixelHashClassifier, write_pixel_hash_version
from fakewatch.errors import IncompatibleClassifier
from fakewatch.registry import CARD_FILE, read_version
from fakewatch.training.dataset import Split
from fakewatch.training.refresh import gate, score
from fakewatch.verdicts import decide


def test_decide_labels_and_uncertain_band() -> None:
    assert decide(0.9, 0.5, 0.1).label == "fake"
    assert decide(0.1, 0.5, 0.1).label == "real"
    assert decide(0.55, 0.5, 0.1).label == "uncertain"
    assert decide(0.55, 0.5, 0.0).label == "fake"  # margin 0 disables the band
    assert decide(0.2, 0.3, 0.05).confidence == pytest.approx(0.8)


def test_calibrated_applies_the_temperature() -> None:
    logits = np.array([-2.0, 0.0, 2.0])
    assert np.allclose(calibrated(logits, 2.0), 1 / (1 + np.exp(-logits / 2)))


def test_pixel_hash_is_deterministic_keyed_and_loaded_by_engine(tmp_path: Path) -> None:
    version = write_pixel_hash_version(tmp_path / "a", "hash-a")
    classifier = load(version)
    assert isinstance(classifier, PixelHashClassifier) and classifier.version == "hash-a"
    images = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    first, again = classifier.predict(images), classifier.predict(images.copy())
    assert np.array_equal(first, again) and np.all((first >= 0) & (first < 1))
    assert len(set(first.round(9))) == 50  # different pixels, unrelated answers
    other = load(write_pixel_hash_version(tmp_path / "b", "hash-b", key="other"))
    assert not np.allclose(first, other.predict(images))


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    version = write_pixel_hash_version(tmp_path / "a", "hash-a")
    card = json.loads((version.path / CARD_FILE).read_text())
    card["engine"] = "quantum"
    (version.path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(IncompatibleClassifier, match="engine"):
        read_version(version.path)


def test_refresh_scores_any_engine_and_gates_on_benchmark_and_new_data(tmp_path: Path) -> None:
    version = write_pixel_hash_version(tmp_path / "a", "hash-a")
    images = np.random.default_rng(1).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    p_fake = PixelHashClassifier(version).predict(images)
    labels = (p_fake >= 0.5).astype(np.float32)  # labels the stand-in gets all right
    perfect = score(version, Split(images, labels, [f"{i}.png" for i in range(40)]), batch_size=16)
    assert perfect["accuracy"] == 1.0 and perfect["count"] == 40
    active = {"benchmark": {"accuracy": 0.90, "roc_auc": 0.95}, "new_data": {"accuracy": 0.60}}
    better = {"benchmark": {"accuracy": 0.899, "roc_auc": 0.95}, "new_data": {"accuracy": 0.80}}
    worse = {"benchmark": {"accuracy": 0.85, "roc_auc": 0.95}, "new_data": {"accuracy": 0.90}}
    assert gate(active, better, tolerance=0.005)[0]
    assert not gate(active, worse, tolerance=0.005)[0]
    assert not gate(active, {**better, "new_data": {"accuracy": 0.60}}, tolerance=0.005)[0]
