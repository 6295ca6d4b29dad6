"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAKE = ROOT.parent / "shared" / "data" / "cifake-train.tar.gz"


def sample_images(folder: Path, count: int, size: int = 32) -> list[Path]:
    """``count`` JPEG files: real CIFAKE images when ../shared is present, generated ones otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if SHARED_CIFAKE.exists() and size == 32:
        with tarfile.open(SHARED_CIFAKE) as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(".jpg"):
                    target = folder / f"{len(paths):06d}.jpg"
                    target.write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
                    paths.append(target)
                    if len(paths) >= count:
                        return paths
    import cv2

    rng = np.random.default_rng(0)
    while len(paths) < count:
        # smooth content with mild noise: photo-like file sizes rather than incompressible noise
        small = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC) if size > 32 else small
        if size > 32:
            image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
        target = folder / f"{len(paths):06d}.jpg"
        cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(target)
    return paths


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    print(f"\n{title}", file=sys.stdout)
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
