"""`fakewatch scan` (embedded: streaming, hashing, batched classification, batched inserts) with each
runtime, the runtime's raw rate on the same images, start-up of a one-file scan, and the naive per-image
loop (cv2.imread + resize + model.predict one image at a time) on the same files, in one run.

    python bench/scan_speed.py [--files 5000] [--naive 300] [--runtimes keras,lite] [--repeats 5]

Each scan runs between two raw calls, and its share is its rate over the mean of those two raw rates; the
table gives the median of these paired shares beside the fastest scan over the fastest raw call. For the
fastest scan it also shows where the CPU went: the main thread (walking, reading, hashing, decoding, the
database), the other threads (the runtime's), and how many cores were busy on average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import sample_images, table

from fakewatch.config import load_settings
from fakewatch.intake.scan import scan
from fakewatch.mode import open_mode


def naive_loop(paths: list[Path], version) -> float:  # type: ignore[no-untyped-def]
    import cv2
    import keras

    model = keras.saving.load_model(version.weights, compile=False)
    size = version.spec.size
    model.predict(np.zeros((1, size, size, 3), np.float32), verbose=0)
    started = time.perf_counter()
    for path in paths:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (size, size)).astype(np.float32)
        model.predict(image[None], verbose=0)
    return len(paths) / (time.perf_counter() - started)


def raw_rate(classifier: Any, images: np.ndarray) -> float:
    """The runtime's raw batch rate on ``images`` (already decoded), the faster of two calls."""
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        classifier.predict(images)
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def scan_rate(folder: Path, home: Path, runtime: str, repeats: int = 3) -> tuple[Any, float, list[float], str]:
    """Warm scans of ``folder`` with ``runtime`` (loading the classifier is start-up, not scanning), each into
    a new database and each between two raw calls of the same runtime on the same decoded images in this
    process. Returns the fastest scan, the fastest raw rate, and each scan's share of the mean of the raw
    rates measured just before and just after it (this machine's speed drifts within minutes: a share
    taken from calls seconds apart is steadier than the fastest scan over the fastest raw call)."""
    from fakewatch import imaging

    summary, images, fastest, shares = None, None, 0.0, []
    for attempt in range(repeats):
        settings = load_settings({"home": str(home if attempt == 0 else home / f"repeat-{attempt}"),
                                  "runtime": runtime})
        with open_mode(settings) as mode:
            mode.warm_up()
            assert mode.runtime is not None
            classifier = mode.runtime.classifier
            if images is None:
                images = np.stack([imaging.load_file(path, classifier.spec, settings.limits)
                                   for path in sorted(folder.iterdir())])
                classifier.predict(images[:512])
            before = raw_rate(classifier, images)
            main, process = time.thread_time(), time.process_time()
            result = scan(mode.intake, [folder], every_row=False)  # as `fakewatch scan` does for its summary
            main, process = time.thread_time() - main, time.process_time() - process
            after = raw_rate(classifier, images)
        shares.append(result.rate / ((before + after) / 2))
        fastest = max(fastest, before, after)
        if summary is None or result.rate > summary.rate:
            summary = result
            summary.cpu = (main, process - main, process / result.seconds)  # type: ignore[attr-defined]
    return summary, fastest, shares, classifier.version


def startup(path: Path, home: Path, runtime: str) -> float:
    """Wall time of `fakewatch scan ONE_FILE` in a fresh process (a warm file cache: the second of two runs)."""
    env = {**os.environ, "FAKEWATCH_HOME": str(home), "FAKEWATCH_RUNTIME": runtime}
    command = [sys.executable, "-m", "fakewatch.cli", "-q", "scan", "--force", str(path)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--naive", type=int, default=300, help="files for the naive loop (it is slow); 0 skips it")
    parser.add_argument("--runtimes", default="keras,lite", help="comma-separated runtimes to measure")
    parser.add_argument("--repeats", type=int, default=5, help="scans per runtime, each into a new database "
                                                              "and each between two raw calls")
    args = parser.parse_args()
    rows, starts = [], []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        paths = sample_images(folder, args.files)
        for runtime in args.runtimes.split(","):
            summary, raw, shares, version = scan_rate(folder, Path(scratch) / f"home-{runtime}", runtime,
                                                      args.repeats)
            main, others, busy = summary.cpu
            rows.append([f"fakewatch scan, runtime {runtime}", summary.files, f"{summary.rate:,.0f}", f"{raw:,.0f}",
                         f"{summary.rate / raw:.0%}", f"{statistics.median(shares):.0%}",
                         " / ".join(f"{share:.0%}" for share in shares), f"{main:.2f} / {others:.2f} / {busy:.2f}"])
            starts.append([f"fakewatch scan ONE_FILE, runtime {runtime}",
                           f"{startup(paths[0], Path(scratch) / f'home-{runtime}', runtime):.2f}"])
        if args.naive:
            from fakewatch.registry import Registry

            naive = naive_loop(paths[: args.naive], Registry(load_settings()).resolve())
            rows.append(["naive loop: imread + resize + model.predict per image", args.naive, f"{naive:,.1f}", "", "",
                         "", "", ""])
    table(f"Scanning 32x32 JPEGs (embedded, SQLite), classifier {version}",
          ["method", "files", "files/s (fastest scan)", "raw runtime images/s (fastest call)",
           "share: fastest over fastest", "share: median of paired runs", "each scan over the raw calls around it",
           "CPU s (fastest scan): main thread / other threads / cores busy"], rows)
    table("Start-up: one 32x32 file, wall time of the whole command", ["command", "seconds"], starts)


if __name__ == "__main__":
    main()
