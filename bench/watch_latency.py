"""Drop-to-verdict latency of `fakewatch watch` in embedded mode, beyond the stability delay.

Each file is written next to the folder and renamed in (a file "at rest"), one at a time; latency is the
time from the rename to its verdict being committed, minus the stability delay.

    python bench/watch_latency.py [--files 30] [--stability-delay 1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import sample_images, table
from sqlalchemy import select

from fakewatch.config import load_settings
from fakewatch.db.tables import Image
from fakewatch.mode import open_mode
from fakewatch.watcher.observer import Watcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--stability-delay", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        sources = sample_images(root / "sources", args.files)
        watched = root / "watched"
        watched.mkdir()
        settings = load_settings({"home": str(root / "home"), "stability_delay": args.stability_delay,
                                  "rescan_interval": 0})
        mode = open_mode(settings)
        mode.warm_up()
        intake = mode.intake
        watcher = Watcher(intake, [str(watched)])
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        watcher.started.wait(60)
        latencies = []
        for source in sources:
            target = watched / source.name
            dropped = time.perf_counter()
            os.rename(source, target)
            while True:
                with intake.database.session() as session:
                    status = session.scalar(select(Image.status).where(Image.path == str(target)))
                if status == "done":
                    break
                time.sleep(0.005)
            latencies.append(time.perf_counter() - dropped - args.stability_delay)
        watcher.stop.set()
        thread.join()
        mode.close()
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    table(f"Drop-to-verdict latency beyond the {args.stability_delay:.1f} s stability delay ({args.files} files)",
          ["p50", "p95", "max"], [[f"{statistics.median(latencies) * 1000:.0f} ms", f"{p95 * 1000:.0f} ms",
                                   f"{latencies[-1] * 1000:.0f} ms"]])


if __name__ == "__main__":
    main()
