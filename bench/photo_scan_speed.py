"""Embedded `fakewatch scan` of 1024x1024 JPEGs end to end (read, hash, decode, crops, photo classifier,
database), the photo classifier's raw crops/s on the same crops, and the share of crops per image, in one run.

    python bench/photo_scan_speed.py [--files 400] [--max-crops 1,3,5]

The images are 1024x1024 JPEGs (quality 90): 256 px photos from ../shared/data/photos-train.tar.gz scaled
up 4x when it is there, smooth generated pictures otherwise. Each ``--max-crops`` value is measured with
the shipped photo classifier copied into a private registry with that crop count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import ROOT, table

from fakewatch import imaging
from fakewatch.classifiers.loading import load
from fakewatch.config import load_settings
from fakewatch.intake.scan import scan
from fakewatch.mode import open_mode
from fakewatch.registry import Registry

SHARED_PHOTOS = ROOT.parent / "shared" / "data" / "photos-train.tar.gz"


def photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources: list[np.ndarray] = []
    if SHARED_PHOTOS.exists():
        with tarfile.open(SHARED_PHOTOS) as archive:
            for member in archive:
                if member.isfile() and member.name.endswith((".jpg", ".png")) and len(sources) < count:
                    data = archive.extractfile(member).read()  # type: ignore[union-attr]
                    sources.append(imaging.decode(data, 10**8))
    rng = np.random.default_rng(0)
    while len(sources) < count:
        sources.append(cv2.resize(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), (256, 256),
                                  interpolation=cv2.INTER_CUBIC))
    paths = []
    for index, rgb in enumerate(sources[:count]):
        big = cv2.resize(rgb, (1024, 1024), interpolation=cv2.INTER_CUBIC)
        path = folder / f"{index:05d}.jpg"
        path.write_bytes(imaging.encode_jpeg(big, 90))
        paths.append(path)
    return paths


def with_crops(registry_dir: Path, version_dir: Path, max_crops: int) -> str:
    target = registry_dir / f"{version_dir.name}-crops{max_crops}"
    shutil.copytree(version_dir, target)
    card = json.loads((target / "card.json").read_text())
    card["input_spec"]["max_crops"] = max_crops
    card["version"] = target.name
    (target / "card.json").write_text(json.dumps(card))
    return target.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--max-crops", default="1,3,5")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        paths = photos(root / "images", args.files)
        shipped = Registry(load_settings(env={})).resolve("photo")
        rows = []
        for max_crops in (int(value) for value in args.max_crops.split(",")):
            home = root / f"home{max_crops}"
            settings = load_settings({"home": str(home)}, env={})
            name = with_crops(settings.registry_path, shipped.path, max_crops)
            settings = load_settings({"home": str(home), "classifier": name}, env={})
            with open_mode(settings) as mode:
                mode.warm_up()
                started = time.perf_counter()
                summary = scan(mode.intake, [root / "images"])
                elapsed = time.perf_counter() - started
            classifier = load(Registry(settings).find(name), settings.batch_size, settings.runtime)
            crops = np.concatenate([imaging.prepare(imaging.decode(path.read_bytes(), 10**8), classifier.spec)
                                    for path in paths[:64]])
            classifier.predict(crops[:16])
            started, done = time.perf_counter(), 0
            while time.perf_counter() - started < 5:  # several calls: one is too short to time
                classifier.predict(crops)
                done += len(crops)
            raw = done / (time.perf_counter() - started)
            judged = summary.by_status.get("done", 0)
            rows.append([max_crops, judged, f"{judged / elapsed:.1f}", f"{raw:.0f}", f"{raw / max_crops:.1f}"])
        table(f"embedded scan of {args.files} 1024x1024 JPEGs with the photo classifier ({shipped.version}), "
              f"2 CPU cores", ["max crops", "classified", "scan images/s (end to end)", "raw crops/s",
                               "raw images/s at that crop count"], rows)


if __name__ == "__main__":
    main()
