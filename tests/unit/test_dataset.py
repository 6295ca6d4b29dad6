import shutil
from pathlib import Path

import numpy as np
import pytest

from fakewatch import imaging
from fakewatch.errors import DatasetError
from fakewatch.training.dataset import discover, load_dataset
from tests.conftest import default_limits, make_labelled_folder

SPEC = imaging.InputSpec(size=32)
LIMITS = default_limits()


def test_flat_layout_is_split_stratified_and_seeded(tmp_path: Path) -> None:
    root = make_labelled_folder(tmp_path / "d", per_class=40)
    first = load_dataset(root, SPEC, LIMITS, valid_fraction=0.25, test_fraction=0.25, seed=3)
    second = load_dataset(root, SPEC, LIMITS, valid_fraction=0.25, test_fraction=0.25, seed=3)
    assert first.layout == "flat"
    assert {name: split.counts() for name, split in first.splits.items()} == {
        "train": {"real": 20, "fake": 20}, "valid": {"real": 10, "fake": 10}, "test": {"real": 10, "fake": 10}}
    assert first.splits["test"].paths == second.splits["test"].paths
    other = load_dataset(root, SPEC, LIMITS, valid_fraction=0.25, test_fraction=0.25, seed=4)
    assert other.splits["test"].paths != first.splits["test"].paths


def test_split_layout_with_uppercase_class_folders(tmp_path: Path) -> None:
    source = make_labelled_folder(tmp_path / "src", per_class=12)
    root = tmp_path / "kaggle"
    for split, names in (("train", range(0, 8)), ("valid", range(8, 10)), ("test", range(10, 12))):
        for label in ("real", "fake"):
            target = root / split / label.upper()
            target.mkdir(parents=True)
            for index in names:
                shutil.copy(source / label / f"{label}_{index:04d}.jpg", target)
    layout, entries = discover(root)
    assert layout == "splits" and len(entries) == 24
    dataset = load_dataset(root, SPEC, LIMITS)
    assert dataset.splits["train"].counts() == {"real": 8, "fake": 8}
    assert dataset.splits["test"].counts() == {"real": 2, "fake": 2}


def test_duplicates_are_removed_before_splitting(tmp_path: Path) -> None:
    root = make_labelled_folder(tmp_path / "d", per_class=30)
    for index in range(10):  # ten extra copies of one fake, as CIFAKE has
        shutil.copy(root / "fake" / "fake_0000.jpg", root / "fake" / f"copy_{index}.jpg")
    dataset = load_dataset(root, SPEC, LIMITS, valid_fraction=0.3, test_fraction=0.3, seed=1)
    assert dataset.duplicates_removed == 10
    all_images = np.concatenate([split.images for split in dataset.splits.values()])
    assert len(all_images) == 60
    flat = all_images.reshape(len(all_images), -1)
    assert len({row.tobytes() for row in flat}) == 60  # no copy in two splits


def test_unreadable_files_are_skipped_and_reported(tmp_path: Path) -> None:
    root = make_labelled_folder(tmp_path / "d", per_class=20)
    (root / "fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "real" / "empty.png").write_bytes(b"")
    dataset = load_dataset(root, SPEC, LIMITS, valid_fraction=0.2, test_fraction=0.2)
    reasons = dict(dataset.skipped)
    assert set(Path(path).name for path in reasons) == {"broken.jpg", "empty.png"}
    assert reasons[str(root / "real" / "empty.png")].startswith("empty")
    assert sum(len(split) for split in dataset.splits.values()) == 40


def test_no_usable_layout(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    with pytest.raises(DatasetError, match="real"):
        discover(tmp_path)
