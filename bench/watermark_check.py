"""How the invisible-watermark reader behaves on real data: false alarms on every real photo in ../shared
(photos-train's ImageNet, BSD100 and Sun-Hays80 photos, the faces set's Unsplash portraits) and what it
finds on the generated ones (per generator), plus its cost per picture.

    python bench/watermark_check.py [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import time
from collections import Counter

from common import ROOT, table

sys.path.insert(0, str(ROOT))
from fakewatch import imaging  # noqa: E402
from fakewatch.errors import ImageError  # noqa: E402
from fakewatch.evidence.containers import blocks  # noqa: E402
from fakewatch.evidence.watermark import find  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def group_of(name: str) -> tuple[str, str] | None:
    parts = name.split("/")
    if "real" in parts:
        index = parts.index("real")
        return "real", parts[index + 1] if index + 2 < len(parts) else "faces"
    if "fake" in parts:
        index = parts.index("fake")
        return "fake", parts[index + 1] if index + 2 < len(parts) else "faces"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="at most this many files per archive (0: all)")
    args = parser.parse_args()
    checked: Counter[tuple[str, str]] = Counter()
    found: Counter[tuple[str, str]] = Counter()
    eligible: Counter[tuple[str, str]] = Counter()
    spent = 0.0
    for archive in ("photos-train.tar.gz", "faces-train.tar.gz"):
        path = SHARED / archive
        if not path.exists():
            print(f"{path} is absent; skipped", file=sys.stderr)
            continue
        with tarfile.open(path) as members:
            seen = 0
            for member in members:
                group = group_of(member.name)
                if not member.isfile() or group is None or not member.name.lower().endswith(
                        (".jpg", ".jpeg", ".png", ".webp")):
                    continue
                data = members.extractfile(member).read()  # type: ignore[union-attr]
                kind = imaging.sniff(data[:64])
                try:
                    rgb = imaging.decode(data, 10 ** 8)
                except ImageError:
                    continue
                checked[group] += 1
                if blocks(data, kind or "").chroma_subsampled or rgb.shape[0] * rgb.shape[1] < 256 * 256:
                    continue  # the reader is not run on these in a scan
                eligible[group] += 1
                started = time.perf_counter()
                if find(rgb):
                    found[group] += 1
                spent += time.perf_counter() - started
                seen += 1
                if args.limit and seen >= args.limit:
                    break
    rows = []
    for label in ("real", "fake"):
        groups = sorted(group for group in checked if group[0] == label)
        for group in groups:
            rows.append([label, group[1], checked[group], eligible[group], found[group]])
        rows.append([label, "all", sum(checked[g] for g in groups), sum(eligible[g] for g in groups),
                     sum(found[g] for g in groups)])
    table("Invisible-watermark reader on ../shared (files checked; eligible: lossless or 4:4:4, at least 256x256; "
          "watermarks found)", ["class", "source or generator", "files", "eligible", "watermark found"], rows)
    total = sum(eligible.values())
    print(f"\nreader cost: {spent / max(total, 1) * 1000:.2f} ms per eligible picture ({total:,} pictures)")


if __name__ == "__main__":
    main()
