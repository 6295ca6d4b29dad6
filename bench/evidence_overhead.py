"""What reading evidence (generation parameters, XMP, EXIF, camera hints, C2PA) costs an embedded scan:
the same files scanned with the analyzers off and on, in fresh databases, alternating, best of each.

    python bench/evidence_overhead.py [--small 5000] [--large 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, sample_images, table

sys.path.insert(0, str(ROOT))
import fakewatch.classify.runtime as runtime  # noqa: E402
from fakewatch.config import load_settings  # noqa: E402
from fakewatch.intake.scan import scan  # noqa: E402
from fakewatch.mode import open_mode  # noqa: E402


def files_per_second(folder: Path, home: Path, evidence: bool) -> float:
    original = runtime.unanalyzed
    if not evidence:  # nothing to read: no analyzer runs and nothing is recorded
        runtime.unanalyzed = lambda session, content_ids: set()  # type: ignore[assignment]
    try:
        settings = load_settings({"home": str(home)})
        with open_mode(settings) as mode:
            mode.warm_up()
            started = time.perf_counter()
            summary = scan(mode.intake, [folder])
            elapsed = time.perf_counter() - started
    finally:
        runtime.unanalyzed = original  # type: ignore[assignment]
    return summary.files / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=5000, help="32x32 JPEGs (CIFAKE when ../shared is present)")
    parser.add_argument("--large", type=int, default=300, help="1024x1024 JPEGs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        sets = [("32x32 JPEG", sample_images(base / "small", args.small)),
                ("1024x1024 JPEG", sample_images(base / "large", args.large, size=1024))]
        for title, paths in sets:
            folder = paths[0].parent
            best = {False: 0.0, True: 0.0}
            for round_number in range(args.rounds):
                for evidence in (False, True):
                    rate = files_per_second(folder, base / f"home-{title[:4]}-{evidence}-{round_number}", evidence)
                    best[evidence] = max(best[evidence], rate)
            cost = 1 - best[True] / best[False]
            rows.append([title, len(paths), f"{best[False]:,.0f}", f"{best[True]:,.0f}", f"{cost:+.1%}"])
    table("Embedded scan, files/s without and with evidence (best of each)",
          ["images", "files", "analyzers off", "analyzers on", "cost"], rows)


if __name__ == "__main__":
    main()
