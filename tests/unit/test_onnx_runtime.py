"""The shipped classifier's ONNX export in ONNX Runtime, and every way a broken export is refused
(no TensorFlow here: the lite runtime must not need it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakewatch.classifiers.loading import load
from fakewatch.classifiers.onnx_runtime import OnnxClassifier
from fakewatch.errors import IncompatibleClassifier
from fakewatch.registry import BUILTIN_DIR, CARD_FILE, read_version, write_card

SHIPPED = sorted(BUILTIN_DIR.iterdir())[-1]


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    copy = tmp_path / SHIPPED.name
    shutil.copytree(SHIPPED, copy)
    return copy


def test_shipped_export_runs_without_tensorflow_and_is_calibrated_like_the_card() -> None:
    version = read_version(SHIPPED, builtin=True)
    assert version.export is not None and version.export["max_abs_delta_p_fake"] <= 1e-4
    classifier = load(version, 64, "lite")
    assert isinstance(classifier, OnnxClassifier)
    check = np.load(SHIPPED / "check_batch.npy")
    p_fake = classifier.predict(check)
    assert p_fake.shape == (len(check),) and np.all((p_fake > 0) & (p_fake < 1))
    half = len(check) // 2  # the stored batch is 128 CIFAKE fakes, then 128 CIFAKE photos
    labels = np.r_[np.ones(half), np.zeros(len(check) - half)]
    assert ((p_fake >= classifier.threshold) == labels).mean() > 0.9
    # batching does not change answers
    assert np.allclose(OnnxClassifier(version, batch_size=7).predict(check[:20]), p_fake[:20], atol=1e-6)


def test_thread_count_reaches_the_runtime_and_leaves_answers_alone() -> None:
    version = read_version(SHIPPED, builtin=True)
    check = np.load(SHIPPED / "check_batch.npy")[:64]
    one = load(version, 64, "lite", threads=1)
    assert one._session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
    assert np.allclose(one.predict(check), load(version, 64, "lite").predict(check), atol=1e-6)


def test_lanes_split_a_batch_and_keep_its_order() -> None:
    version = read_version(SHIPPED, builtin=True)
    check = np.load(SHIPPED / "check_batch.npy")
    lanes = OnnxClassifier(version, batch_size=16, threads=3)
    assert lanes.lanes == 3 and lanes._session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
    alone = OnnxClassifier(version, batch_size=256, threads=1)
    assert alone.lanes == 1
    assert np.allclose(lanes.predict(check), alone.predict(check), atol=1e-6)
    assert np.allclose(lanes.predict(check[:5]), alone.predict(check[:5]), atol=1e-6)  # fewer images than lanes


def test_a_worker_shares_the_cores_out_among_its_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakewatch.config import load_settings
    from fakewatch.worker import app

    monkeypatch.setattr(app, "cores", lambda: 8)
    automatic = load_settings(env={})
    assert automatic.runtime_threads == 0
    assert app.worker_settings(automatic, 2, "prefork").runtime_threads == 4
    assert app.worker_settings(automatic, 3, "threads").runtime_threads == 2
    assert app.worker_settings(automatic, 16, "prefork").runtime_threads == 1  # never 0 (that means all cores)
    assert app.worker_settings(automatic, 1, "solo").runtime_threads == 0  # one process: every core
    assert app.worker_settings(load_settings(env={"FAKEWATCH_RUNTIME_THREADS": "3"}), 2, "prefork").runtime_threads == 3


def _edit_card(directory: Path, change) -> None:  # type: ignore[no-untyped-def]
    card = json.loads((directory / CARD_FILE).read_text())
    change(card)
    write_card(directory, card)


def test_export_whose_bytes_differ_from_the_card_is_refused(shipped_copy: Path) -> None:
    export = shipped_copy / "classifier.onnx"
    export.write_bytes(export.read_bytes()[:1000])  # truncated
    with pytest.raises(IncompatibleClassifier, match=f"classifier {SHIPPED.name}: export classifier.onnx does "
                                                     "not match the sha256"):
        load(read_version(shipped_copy), runtime="lite")  # refused, not silently run through Keras


def test_truncated_export_with_a_matching_hash_is_refused(shipped_copy: Path) -> None:
    export = shipped_copy / "classifier.onnx"
    export.write_bytes(export.read_bytes()[:1000])
    from fakewatch.registry import file_sha256

    _edit_card(shipped_copy, lambda card: card["export"].update(sha256=file_sha256(export)))
    with pytest.raises(IncompatibleClassifier, match=f"classifier {SHIPPED.name}: cannot load its export"):
        load(read_version(shipped_copy), runtime="lite")


def test_export_for_another_input_size_is_refused(shipped_copy: Path) -> None:
    _edit_card(shipped_copy, lambda card: card["input_spec"].update(size=64))
    with pytest.raises(IncompatibleClassifier, match=r"takes \[32, 32, 3\] tensor\(uint8\), but the card's "
                                                     r"input spec is \[64, 64, 3\] uint8"):
        load(read_version(shipped_copy), runtime="lite")


def test_missing_export_file_is_refused(shipped_copy: Path) -> None:
    (shipped_copy / "classifier.onnx").unlink()
    with pytest.raises(IncompatibleClassifier, match="export 'classifier.onnx' is missing"):
        load(read_version(shipped_copy), runtime="lite")
