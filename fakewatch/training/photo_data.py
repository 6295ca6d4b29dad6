"""Photo training data: grouped samples, shortcut-breaking augmentation, and crops for training and scoring.

A photo data folder holds ``real/<group>/...`` and ``fake/<group>/...`` (files directly under ``real/`` or
``fake/`` belong to the group ``real`` or ``fake``). A sample's group is ``label/sub-folder``, for example
``fake/black-forest-labs_FLUX.1-dev`` or ``real/bsd100``; ``--holdout-group`` patterns match it.
When a file name carries a prompt (``images__<generator>__<prompt>.jpg``, as in photos-train), the prompt
is kept, so an evaluation can hold prompts out together with generators.

Every image is read and decoded by :mod:`fakewatch.imaging`; training crops come from the same
:func:`~fakewatch.imaging.fit_min_side` and crop size the scanner uses, and scoring crops from
:func:`~fakewatch.imaging.prepare` itself. Metadata never reaches the network (only decoded pixels do),
and augmentation re-encodes both classes at random JPEG qualities, resizes and blurs a share of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import overload

import cv2
import numpy as np

from fakewatch import imaging
from fakewatch.config import Limits
from fakewatch.errors import DatasetError, ImageError
from fakewatch.training.dataset import LABELS

log = logging.getLogger(__name__)
NEAR_CONSTANT_STD = 2.0  # grey levels: images flatter than this carry no traces and are dropped
UPSCALERS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)  # how re-shared images get enlarged
AUGMENTATION = ("half the time, the social-media pass (below); otherwise resize by 0.5-2x, log-uniform, before "
                "cropping (p=0.4; area down, bilinear, bicubic or Lanczos up), Gaussian blur sigma 0.4-1.2 (p=0.15) "
                "and a JPEG re-encode at quality 60-95 (p=0.9); then horizontal flip (p=0.5) and a random crop "
                "position; the same for both classes")
SOCIAL_SIDES = (2048, 1080, 720, 512)  # long sides that phones and sites downscale to
SOCIAL_MEDIA_PASS = ("downscale (area) to a long side of 2048, 1080, 720 or 512 px when larger; a crop keeping "
                     "80-100% of each side (p=0.2); a screenshot-like enlargement by 1.0-1.5x, bilinear (p=0.1); "
                     "then JPEG at quality 60-95 with 4:2:0 chroma (p=0.75) or WebP at quality 60-95")


@dataclass(frozen=True)
class Sample:
    path: str
    label: int  # 1 = fake
    group: str  # "fake/<generator>" or "real/<source>"
    prompt: str | None = None


def _prompt(path: Path) -> str | None:
    parts = path.stem.split("__")
    return parts[-1] if len(parts) >= 3 else None


def _walk(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted, following links to folders (data folders are often links)."""
    found = [Path(top) / name for top, _, files in os.walk(folder, followlinks=True) for name in files]
    return sorted(path for path in found if path.is_file())


def discover(root: str | Path, allow_empty: bool = False) -> list[Sample]:
    """Every image file under ``root/real`` and ``root/fake`` (links followed), with its group."""
    root = Path(root)
    samples = []
    for name, label in LABELS.items():
        folder = root / name
        if not folder.is_dir():
            raise DatasetError(f"{root} needs 'real' and 'fake' folders, each holding one folder per group")
        for path in _walk(folder):
            relative = path.relative_to(folder)
            if any(part.startswith(".") for part in relative.parts):
                continue
            group = f"{name}/{relative.parts[0]}" if len(relative.parts) > 1 else name
            samples.append(Sample(str(path), label, group, _prompt(path)))
    if not samples and not allow_empty:
        raise DatasetError(f"{root} holds no files under real/ and fake/")
    return samples


def matches(group: str, patterns: Iterable[str]) -> bool:
    """Whether ``group`` matches any shell-style pattern (``fake/*FLUX*``, ``real/bsd100``)."""
    return any(fnmatchcase(group, pattern) for pattern in patterns)


def validation_groups(samples: list[Sample], candidates: Iterable[int], share: float, seed: int) -> set[str]:
    """Whole groups among ``candidates`` (sample indices) to validate on, drawn at random until they hold
    about ``share`` of each label's images, so that temperature and threshold are chosen on generators and
    sources of real photos that training never saw (as held-out test groups are). A group holding more than
    twice ``share`` of its label is never drawn; a label with no group small enough gets none."""
    rng = np.random.default_rng(seed)
    sizes = Counter((samples[i].label, samples[i].group) for i in candidates)
    chosen: set[str] = set()
    for label in (0, 1):
        groups = sorted(group for lab, group in sizes if lab == label)
        total, taken = sum(sizes[(label, group)] for group in groups), 0
        for position in rng.permutation(len(groups)):
            group = groups[position]
            if taken + sizes[(label, group)] > 2 * share * total:
                continue
            chosen.add(group)
            taken += sizes[(label, group)]
            if taken >= share * total:
                break
    return chosen


def carve(samples: list[Sample], holdout: list[str], valid_fraction: float, test_fraction: float,
          seed: int, validation: str = "random") -> dict[str, list[int]]:
    """Indices for ``train``, ``valid`` (temperature and threshold), ``carve`` (the in-training figure) and
    ``heldout`` (the held-out groups, never trained, validated or calibrated on). The carve is a random share
    of the images of the groups that are trained on. Validation (``validation``): ``random``, a random share
    of those images too; ``groups``, whole groups holding about ``valid_fraction`` of each label, left out of
    training (:func:`validation_groups`), so that the threshold is chosen on generators and
    sources of real photos the network never saw. Either way validation holds at least two of each label."""
    if validation not in ("random", "groups"):
        raise ValueError(f"validation must be 'random' or 'groups', not {validation!r}")
    rng = np.random.default_rng(seed)
    heldout = [i for i, sample in enumerate(samples) if matches(sample.group, holdout)]
    taken = set(heldout)
    draw = rng.random(len(samples))
    if validation == "groups":
        candidates = [i for i in range(len(samples)) if i not in taken]
        chosen = validation_groups(samples, candidates, valid_fraction, seed)
        valid = [i for i in candidates if samples[i].group in chosen]
        carve_from = 0.0  # the carve is drawn from the rest as if no image had gone to validation
    else:
        valid = [i for i in range(len(samples)) if i not in taken and draw[i] < valid_fraction]
        carve_from = valid_fraction
    for label in (0, 1):  # calibration needs both labels: at least two of each
        spare = [i for i in np.argsort(draw) if i not in taken and samples[i].label == label and i not in valid]
        valid += [int(i) for i in spare[:max(0, 2 - sum(samples[i].label == label for i in valid))]]
    taken |= set(valid)
    carved = [i for i in range(len(samples)) if i not in taken and carve_from <= draw[i] < carve_from + test_fraction]
    taken |= set(carved)
    return {"train": [i for i in range(len(samples)) if i not in taken], "valid": valid, "carve": carved,
            "heldout": heldout}


class Images(Sequence[np.ndarray]):
    """Decoded images, kept encoded: each is decoded again when it is read, so a data set of many large
    images costs the memory of its files, not of its pixels. ``Images[i]`` is the RGB array
    :func:`fakewatch.imaging.decode` gives; :meth:`subset` selects images without decoding them."""

    def __init__(self, encoded: list[bytes], max_pixels: int) -> None:
        self._encoded = encoded
        self._max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self._encoded)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> Images: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | Images:
        if isinstance(index, slice):
            return Images(self._encoded[index], self._max_pixels)
        return imaging.decode(self._encoded[index], self._max_pixels)

    def subset(self, indices: Iterable[int]) -> Images:
        return Images([self._encoded[i] for i in indices], self._max_pixels)


@dataclass
class Decoded:
    samples: list[Sample]
    images: Images  # decoded RGB at native resolution, on reading
    dropped: dict[str, int]


def decode_all(samples: list[Sample], limits: Limits, workers: int = 4) -> Decoded:
    """Decode every sample once to check it; drop unreadable files, exact duplicates (by SHA-256, across
    all groups; a content found under both labels is dropped entirely) and near-constant images."""
    def one(sample: Sample) -> tuple[str, bytes, float] | str:
        try:
            data = imaging.read_bytes(sample.path, limits.max_file_bytes)
            return hashlib.sha256(data).hexdigest(), data, float(imaging.decode(data, limits.max_pixels).std())
        except ImageError as exc:
            return f"{exc.kind}: {exc}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, samples))
    dropped = {"unreadable": 0, "duplicate": 0, "conflicting_label": 0, "near_constant": 0}
    labels_by_hash: dict[str, set[int]] = {}
    for sample, result in zip(samples, results):
        if not isinstance(result, str):
            labels_by_hash.setdefault(result[0], set()).add(sample.label)
    seen: set[str] = set()
    kept, encoded = [], []
    for sample, result in zip(samples, results):
        if isinstance(result, str):
            dropped["unreadable"] += 1
            log.warning("skipping %s", result)
            continue
        digest, data, spread = result
        if len(labels_by_hash[digest]) > 1:
            dropped["conflicting_label"] += 1
        elif digest in seen:
            dropped["duplicate"] += 1
        elif spread < NEAR_CONSTANT_STD:
            dropped["near_constant"] += 1
        else:
            seen.add(digest)
            kept.append(sample)
            encoded.append(data)
    return Decoded(kept, Images(encoded, limits.max_pixels), dropped)


def social_media_pass(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random pass through what phones and sites do to a shared image (see :data:`SOCIAL_MEDIA_PASS`)."""
    side = SOCIAL_SIDES[int(rng.integers(len(SOCIAL_SIDES)))]
    height, width = rgb.shape[:2]
    if max(height, width) > side:
        scale = side / max(height, width)
        rgb = cv2.resize(rgb, (max(8, round(width * scale)), max(8, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    if rng.random() < 0.2:
        height, width = rgb.shape[:2]
        keep_h, keep_w = (max(8, int(side_length * rng.uniform(0.8, 1.0))) for side_length in (height, width))
        top, left = int(rng.integers(0, height - keep_h + 1)), int(rng.integers(0, width - keep_w + 1))
        rgb = rgb[top:top + keep_h, left:left + keep_w]
    if rng.random() < 0.1:
        scale = float(rng.uniform(1.0, 1.5))
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                         interpolation=cv2.INTER_LINEAR)
    quality = int(rng.integers(60, 96))
    return imaging.decode(_encode_shared(np.ascontiguousarray(rgb), quality, rng.random() < 0.75), 1 << 40)


def _encode_shared(rgb: np.ndarray, quality: int, jpeg: bool) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if jpeg:
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                               cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    else:
        ok, buffer = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise ImageError("the social-media pass could not re-encode an image")
    return buffer.tobytes()


def augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random degradation of a decoded image (see :data:`AUGMENTATION`)."""
    if rng.random() < 0.5:
        rgb = social_media_pass(rgb, rng)
    else:
        if rng.random() < 0.4:
            scale = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            height, width = rgb.shape[:2]
            shape = (max(8, round(width * scale)), max(8, round(height * scale)))
            method = cv2.INTER_AREA if scale < 1 else UPSCALERS[int(rng.integers(len(UPSCALERS)))]
            rgb = cv2.resize(rgb, shape, interpolation=method)
        if rng.random() < 0.15:
            rgb = cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.4, 1.2)))
        if rng.random() < 0.9:
            rgb = imaging.decode(imaging.encode_jpeg(rgb, int(rng.integers(60, 96))), 1 << 40)
    if rng.random() < 0.5:
        rgb = rgb[:, ::-1]
    return rgb


def random_crop(rgb: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A crop at a random position, after the scanner's own scaling of images smaller than one crop."""
    rgb = imaging.fit_min_side(rgb, size)
    top = int(rng.integers(0, rgb.shape[0] - size + 1))
    left = int(rng.integers(0, rgb.shape[1] - size + 1))
    return np.ascontiguousarray(rgb[top:top + size, left:left + size])


def training_crops(images: Iterable[np.ndarray], size: int, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``copies`` augmented random crops of every image: (N*copies) x size x size x 3 crops and the index
    of the image each came from."""
    rng = np.random.default_rng(seed)
    known = len(images) if isinstance(images, Sized) else 0  # allocated once when the count is known
    crops = np.empty((known * copies, size, size, 3), np.uint8)
    count = 0
    for rgb in images:
        if count + copies > len(crops):  # grown by half each time: no list of crops beside the array
            crops = np.concatenate([crops, np.empty((max(copies, len(crops) // 2), size, size, 3), np.uint8)])
        for _ in range(copies):
            crops[count] = random_crop(augment(rgb, rng), size, rng)
            count += 1
    return crops[:count].copy() if count < len(crops) else crops, np.repeat(np.arange(count // copies), copies)


def scoring_crops(images: Iterable[np.ndarray], spec: imaging.InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """The crops the scanner classifies each image from, and the index of the image each came from."""
    prepared = [imaging.prepare(rgb, spec) for rgb in images]
    owners = np.concatenate([np.full(len(crops), index) for index, crops in enumerate(prepared)])
    return np.concatenate(prepared), owners


def mean_by_owner(values: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """The mean of ``values`` per owner index (0..count-1): how crop logits become one image's logit."""
    sums = np.bincount(owners, weights=values, minlength=count)
    return sums / np.maximum(np.bincount(owners, minlength=count), 1)
