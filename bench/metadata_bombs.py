"""What hostile metadata costs one file's read: peak memory and time of the per-file path a scan runs
(read, decode, every metadata reader), each bomb in a fresh subprocess so its peak is its own.

    python bench/metadata_bombs.py [--timeout 900]

The bombs come from ``tests/hostile.py``: JPEGs whose EXIF directories point at each other, and PNGs
with 250 compressed text chunks (XMP in iTXt, or zTXt) that each inflate to almost 4 MiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, table

sys.path.insert(0, str(ROOT))


def one(path: str) -> None:
    """Child: read, decode and analyse ``path`` as :meth:`fakewatch.classify.runtime.Runtime._load` does."""
    from fakewatch import evidence, imaging, jpeg
    from fakewatch.config import load_settings
    from fakewatch.errors import ImageError
    from fakewatch.evidence.c2pa import C2paOptions

    settings = load_settings({})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcome = "decoded"
    try:
        data = imaging.read_bytes(path, settings.max_file_bytes)
        kind = imaging.sniff(data[:64])
        layout = jpeg.layout(data) if kind == "jpeg" else None
        rgb = imaging.decode(data, settings.max_pixels, [], True, layout)
        found = evidence.analyze(data, kind, C2paOptions(), rgb, layout)
        outcome += ", " + (", ".join(sorted({item.kind for item in found})) or "no evidence")
    except ImageError as exc:
        outcome = f"{exc.kind}: {exc}"[:80]
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_kib": peak, "imports_kib": before, "outcome": outcome}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per bomb")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        one(options.one)
        return
    from tests.hostile import METADATA_BOMBS

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (build, _) in METADATA_BOMBS.items():
            path = Path(folder) / name
            path.write_bytes(build())
            started = time.perf_counter()
            try:
                child = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True,
                                       text=True, timeout=options.timeout, check=True)
            except subprocess.TimeoutExpired:
                rows.append([name, f"{path.stat().st_size / 1e6:.1f} MB", "-", f"> {options.timeout:.0f} s",
                             "-", "timed out"])
                continue
            except subprocess.CalledProcessError as exc:
                rows.append([name, f"{path.stat().st_size / 1e6:.1f} MB", "-",
                             f"{time.perf_counter() - started:.1f} s", "-", f"failed: {exc.stderr[-200:]!r}"])
                continue
            result = json.loads(child.stdout.splitlines()[-1])
            rows.append([name, f"{path.stat().st_size / 1e6:.1f} MB", f"{result['peak_kib'] / 1024:.0f} MB",
                         f"{result['seconds']:.2f} s", f"{(result['peak_kib'] - result['imports_kib']) / 1024:.0f} MB",
                         result["outcome"]])
    table("Metadata bombs: one file's read, decode and metadata readers, each in a fresh process",
          ["bomb", "size", "peak RSS", "time", "peak over imports", "outcome"], rows)


if __name__ == "__main__":
    main()
