"""Raw throughput of the active classifier: compiled batched calls vs naive per-image model.predict.

    python bench/classifier_speed.py [--images 8192] [--naive 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import table

from fakewatch.config import load_settings
from fakewatch.keras_classifier import KerasClassifier
from fakewatch.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--naive", type=int, default=100, help="images for the per-image predict loop")
    args = parser.parse_args()

    import keras

    version = Registry(load_settings()).resolve()
    images = np.random.default_rng(0).integers(0, 255, (args.images, version.spec.size, version.spec.size, 3),
                                               dtype=np.uint8)
    rows = []
    for batch in (1, 32, 256, 1024):
        classifier = KerasClassifier(version, batch_size=batch)
        count = min(args.images, 200) if batch == 1 else args.images
        classifier.predict(images[: batch * 2])  # warm up: trace and allocate
        started = time.perf_counter()
        classifier.predict(images[:count])
        rate = count / (time.perf_counter() - started)
        rows.append([f"compiled call, batch {batch}", count, f"{rate:,.0f}"])

    model = keras.saving.load_model(version.weights, compile=False)
    model.predict(images[:1].astype(np.float32), verbose=0)
    started = time.perf_counter()
    for index in range(args.naive):
        model.predict(images[index:index + 1].astype(np.float32), verbose=0)
    naive = args.naive / (time.perf_counter() - started)
    rows.append(["model.predict, one image per call", args.naive, f"{naive:,.0f}"])
    table(f"Classifier {version.version} ({version.card.get('parameters', '?')} parameters), images/s",
          ["method", "images", "images/s"], rows)


if __name__ == "__main__":
    main()
