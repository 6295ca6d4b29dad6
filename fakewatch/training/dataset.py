"""Labelled image folders -> deduplicated, split, decoded arrays.

Two layouts are recognised (folder names case-insensitive):

    DIR/{train,valid,test}/{real,fake}/...   splits given ("val"/"validation" accepted; a missing valid
                                             split is carved from train, test is optional)
    DIR/{real,fake}/...                      split here: stratified, seeded, deduplicated first

Every file goes through :func:`fakewatch.imaging.load_input`, the scanner's own loading path.
Content is deduplicated by SHA-256 *before* splitting, so copies cannot land on both sides of a split;
content that appears under both labels is dropped and reported. Unreadable files are reported and skipped.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fakewatch import imaging
from fakewatch.config import Limits
from fakewatch.errors import DatasetError, ImageError

log = logging.getLogger(__name__)

LABELS = {"real": 0, "fake": 1}
SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
SPLITS = ("train", "valid", "test")
_STRATUM = re.compile(r"\((\d+)\)")


@dataclass(frozen=True)
class Entry:
    path: Path
    label: int
    split: str | None  # None: to be assigned


@dataclass
class Split:
    images: np.ndarray  # N x size x size x 3 uint8
    labels: np.ndarray  # N float32, 1 = fake
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        fake = int(self.labels.sum())
        return {"real": len(self) - fake, "fake": fake}


@dataclass
class Dataset:
    root: str
    layout: str
    splits: dict[str, Split]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates_removed: int = 0
    conflicts_removed: int = 0

    def whole(self) -> Split:
        """Every image of every split as one split (for evaluating on a whole folder)."""
        parts = list(self.splits.values())
        return Split(np.concatenate([part.images for part in parts]),
                     np.concatenate([part.labels for part in parts]),
                     [path for part in parts for path in part.paths])

    def describe(self) -> dict[str, object]:
        """The training-data description that goes into a classifier card."""
        return {
            "root": self.root,
            "layout": self.layout,
            "counts": {name: split.counts() for name, split in self.splits.items()},
            "duplicates_removed": self.duplicates_removed,
            "conflicting_labels_removed": self.conflicts_removed,
            "unreadable_skipped": len(self.skipped),
        }


def _child_dirs(folder: Path) -> dict[str, Path]:
    return {child.name.lower(): child for child in folder.iterdir() if child.is_dir()}


def _class_dirs(folder: Path) -> dict[int, Path]:
    children = _child_dirs(folder)
    found = {label: children[name] for name, label in LABELS.items() if name in children}
    if len(found) != 2:
        raise DatasetError(f"{folder} needs both a 'real' and a 'fake' sub-folder (any case); "
                           f"found: {sorted(children) or 'none'}")
    return found


def _files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def discover(root: str | Path) -> tuple[str, list[Entry]]:
    """Find the layout of ``root`` and list its labelled files."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    children = _child_dirs(root)
    split_dirs = {SPLIT_NAMES[name]: path for name, path in children.items() if name in SPLIT_NAMES}
    if split_dirs:
        if "train" not in split_dirs:
            raise DatasetError(f"{root} has {sorted(split_dirs)} but no 'train' folder")
        layout = "splits"
        groups: list[tuple[str | None, dict[int, Path]]] = [
            (split, _class_dirs(path)) for split, path in split_dirs.items()]
    elif {"real", "fake"} <= set(children):
        layout = "flat"
        groups = [(None, _class_dirs(root))]
    else:
        raise DatasetError(f"{root}: expected real/ and fake/ folders, or train/ (valid/, test/) folders "
                           f"containing them; found {sorted(children) or 'no folders'}")
    entries = [Entry(path, label, split)
               for split, classes in groups for label, folder in classes.items() for path in _files(folder)]
    if not entries:
        raise DatasetError(f"{root} contains no files under its real/ and fake/ folders")
    return layout, entries


def _load_one(entry: Entry, spec: imaging.InputSpec, limits: Limits) -> tuple[str, np.ndarray] | str:
    try:
        data = imaging.read_bytes(entry.path, limits.max_file_bytes)
        return hashlib.sha256(data).hexdigest(), imaging.load_input(data, spec, limits.max_pixels)
    except ImageError as exc:
        return f"{exc.kind}: {exc}"


def _stratum(entry: Entry) -> tuple[int, str]:
    match = _STRATUM.search(entry.path.stem)
    return entry.label, match.group(1) if match else ""


def _assign_splits(entries: list[Entry], fractions: dict[str, float], seed: int) -> dict[Entry, str]:
    """Stratified split by label (and by a bracketed class tag in the file name, e.g. CIFAKE's '(7)')."""
    strata: dict[tuple[int, str], list[Entry]] = defaultdict(list)
    for entry in entries:
        strata[_stratum(entry)].append(entry)
    rng = np.random.default_rng(seed)
    assigned: dict[Entry, str] = {}
    for key in sorted(strata):
        members = strata[key]
        order = rng.permutation(len(members))
        cut_valid = round(len(members) * fractions.get("valid", 0.0))
        cut_test = cut_valid + round(len(members) * fractions.get("test", 0.0))
        for rank, index in enumerate(order):
            assigned[members[index]] = "valid" if rank < cut_valid else "test" if rank < cut_test else "train"
    return assigned


def load_dataset(root: str | Path, spec: imaging.InputSpec, limits: Limits, *, valid_fraction: float = 0.05,
                 test_fraction: float = 0.05, seed: int = 1337, workers: int = 8,
                 progress: Callable[[int, int], None] | None = None,
                 extra: Iterable[str | Path] = ()) -> Dataset:
    """Discover, decode, deduplicate and split a labelled folder (plus ``extra`` real/fake folders,
    whose images are split like the main folder's, or join its train split when it has given splits)."""
    if not (0 < valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError("valid_fraction and test_fraction must be fractions summing to less than 1")
    layout, entries = discover(root)
    for folder in extra:
        entries += [Entry(path, label, None) for label, path_folder in _class_dirs(Path(folder)).items()
                    for path in _files(path_folder)]
    loaded: dict[Entry, tuple[str, np.ndarray]] = {}
    skipped: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda e: _load_one(e, spec, limits), entries)
        for done, (entry, result) in enumerate(zip(entries, results), 1):
            if isinstance(result, str):
                skipped.append((str(entry.path), result))
                log.warning("skipping %s: %s", entry.path, result)
            else:
                loaded[entry] = result
            if progress is not None and (done % 2000 == 0 or done == len(entries)):
                progress(done, len(entries))
    kept, duplicates, conflicts = _deduplicate(loaded)
    if layout == "flat":
        splits = _assign_splits(kept, {"valid": valid_fraction, "test": test_fraction}, seed)
    else:
        splits = _given_splits(kept, valid_fraction, seed)
    dataset = Dataset(str(root), layout, _pack(kept, splits, loaded), skipped, duplicates, conflicts)
    if len(dataset.splits["train"]) == 0 or len(dataset.splits["valid"]) == 0:
        raise DatasetError(f"{root}: not enough readable images to form train and validation splits")
    return dataset


def _deduplicate(loaded: dict[Entry, tuple[str, np.ndarray]]) -> tuple[list[Entry], int, int]:
    """One entry per content hash. Given splits win in order test > valid > train, so nothing leaks."""
    by_hash: dict[str, list[Entry]] = defaultdict(list)
    for entry, (digest, _) in loaded.items():
        by_hash[digest].append(entry)
    rank = {"test": 0, "valid": 1, "train": 2, None: 3}
    kept: list[Entry] = []
    duplicates = conflicts = 0
    for digest in sorted(by_hash):
        group = sorted(by_hash[digest], key=lambda e: (rank[e.split], str(e.path)))
        if len({entry.label for entry in group}) > 1:
            conflicts += len(group)
            log.warning("dropping %d copies of one image labelled both real and fake, e.g. %s",
                        len(group), group[0].path)
            continue
        kept.append(group[0])
        duplicates += len(group) - 1
    return kept, duplicates, conflicts


def _given_splits(entries: list[Entry], valid_fraction: float, seed: int) -> dict[Entry, str]:
    assigned = {entry: entry.split or "train" for entry in entries}
    if not any(split == "valid" for split in assigned.values()):
        train = [entry for entry in entries if assigned[entry] == "train"]
        for entry, split in _assign_splits(train, {"valid": valid_fraction}, seed).items():
            assigned[entry] = split
    return assigned


def _pack(entries: list[Entry], splits: dict[Entry, str],
          loaded: dict[Entry, tuple[str, np.ndarray]]) -> dict[str, Split]:
    packed: dict[str, Split] = {}
    for name in SPLITS:
        members = sorted((e for e in entries if splits[e] == name), key=lambda e: str(e.path))
        if not members and name == "test":
            continue
        images = np.stack([loaded[e][1] for e in members]) if members else np.zeros((0, 1, 1, 3), np.uint8)
        labels = np.array([e.label for e in members], dtype=np.float32)
        packed[name] = Split(images, labels, [str(e.path) for e in members])
    return packed
