"""`fakewatch scan` (embedded: streaming, hashing, batched classification, batched inserts) against the
naive per-image loop (cv2.imread + resize + model.predict one image at a time) on the same files.

    python bench/scan_speed.py [--files 5000] [--naive 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import sample_images, table

from fakewatch.classify.scan import scan
from fakewatch.config import load_settings
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--naive", type=int, default=300, help="files for the naive loop (it is slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        paths = sample_images(folder, args.files)
        settings = load_settings({"home": str(Path(scratch) / "home")})
        with open_mode(settings) as mode:
            mode.warm_up()  # loading the classifier is start-up, not scanning
            summary = scan(mode.intake, [folder])
            assert mode.runtime is not None
            version = mode.runtime.classifier
        from fakewatch.registry import Registry

        naive = naive_loop(paths[: args.naive], Registry(settings).resolve())
    table(f"Scanning 32x32 JPEGs, classifier {version.version}, files/s",
          ["method", "files", "files/s"],
          [["fakewatch scan (embedded, SQLite)", summary.files, f"{summary.rate:,.0f}"],
           ["naive loop: imread + resize + predict per image", args.naive, f"{naive:,.1f}"],
           ["speed-up", "", f"{summary.rate / naive:,.0f}x"]])


if __name__ == "__main__":
    main()
