"""Embedded `fakewatch scan` of 1024x1024 JPEGs end to end (read, hash, decode, crops, photo classifier,
database), the photo classifier's raw crops/s on the same crops, and the share of crops per image, in one run.

    python bench/photo_scan_speed.py [--files 400] [--max-crops card,1,3,5] [--classifier DIR]

The images are 1024x1024 JPEGs (quality 90): 256 px photos from ../shared/data/photos-train.tar.gz scaled
up 4x when it is there, smooth generated pictures otherwise. Each ``--max-crops`` value is measured with
the photo classifier (the shipped one, or the version folder ``--classifier``) copied into a private
registry with that crop count (``card``: its card's own crop policy). A second table gives, in fresh
processes, the wall time of `fakewatch scan` of one 1024 px JPEG (start-up included) and the time and
peak memory of a scan of one 100-megapixel JPEG (10,000 x 10,000).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
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


def with_crops(registry_dir: Path, version_dir: Path, max_crops: str) -> str:
    target = registry_dir / f"{version_dir.name}-crops{max_crops}"
    shutil.copytree(version_dir, target)
    card = json.loads((target / "card.json").read_text())
    if max_crops != "card":
        card["input_spec"]["max_crops"] = int(max_crops)
        card["input_spec"]["pixels_per_crop"] = 0
    card["version"] = target.name
    (target / "card.json").write_text(json.dumps(card))
    return target.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--max-crops", default="card,1,3,5")
    parser.add_argument("--classifier", type=Path, help="a photo classifier's version folder (default: shipped)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        paths = photos(root / "images", args.files)
        shipped = Registry(load_settings(env={})).resolve("photo")
        source = args.classifier or shipped.path
        rows = []
        for max_crops in args.max_crops.split(","):
            home = root / f"home{max_crops}"
            settings = load_settings({"home": str(home)}, env={})
            name = with_crops(settings.registry_path, source, max_crops)
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
            per_image = len(crops) / 64
            rows.append([max_crops, judged, f"{judged / elapsed:.1f}", f"{raw:.0f}", f"{per_image:.1f}",
                         f"{raw / per_image:.1f}"])
        table(f"embedded scan of {args.files} 1024x1024 JPEGs with the photo classifier ({source.name}), "
              f"{os.cpu_count()} CPU cores", ["max crops", "classified", "scan images/s (end to end)", "raw crops/s",
                                             "crops per image", "raw images/s at that crop count"], rows)
        single_runs(root, paths[0], source)


PEAK_OF_SCAN = """import sys
from fakewatch.cli import cli
try:
    cli(["-q", "scan", sys.argv[1]], obj={})
finally:  # VmHWM: this process's own peak (ru_maxrss would carry the parent's across exec)
    peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    print(f"{int(peak) / 1024:.0f}", file=sys.stderr)
"""


def single_runs(root: Path, photo: Path, source: Path) -> None:
    """One-image scan (fresh process, start-up included) and a 100-megapixel scan's time and peak RSS."""
    huge = root / "huge" / "huge.jpg"
    huge.parent.mkdir()
    tile = imaging.decode(photo.read_bytes(), 10**8)
    huge.write_bytes(imaging.encode_jpeg(np.tile(tile, (10, 10, 1))[:10_000, :10_000], 85))
    one = root / "one"
    one.mkdir()
    shutil.copy(photo, one / photo.name)
    rows = []
    for name, folder in (("one 1024x1024 JPEG", one), ("one 10,000 x 10,000 JPEG (100 MP)", huge.parent)):
        env = {**os.environ, "FAKEWATCH_HOME": str(root / f"home-{folder.name}"), "FAKEWATCH_CLASSIFIER": "",
               "FAKEWATCH_CONFIG": "", "FAKEWATCH_DATABASE_URL": "", "FAKEWATCH_BROKER_URL": ""}
        registry = load_settings({"home": env["FAKEWATCH_HOME"]}, env={}).registry_path
        version = with_crops(registry, source, "card")
        subprocess.run([sys.executable, "-m", "fakewatch.cli", "classifiers", "activate", version], env=env,
                       check=True, capture_output=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK_OF_SCAN, str(folder)], env=env, capture_output=True,
                              text=True)
        elapsed = time.perf_counter() - started
        peak = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
        rows.append([name, done.returncode, f"{elapsed:.2f}", peak])
    table("fresh `fakewatch scan` processes", ["input", "exit", "wall s", "peak RSS MB"], rows)


if __name__ == "__main__":
    main()
