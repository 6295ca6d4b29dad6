"""The photo classifier's data manifest: every row complete and pinned, and no data reserved for
independent evaluation anywhere in it (the check ``scripts/build_data.py`` applies when it writes one)."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "data" / "manifest.csv"


def build_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_data", ROOT / "scripts" / "build_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows() -> list[dict[str, str]]:
    with open(MANIFEST, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == build_data().FIELDS
        return list(reader)


def test_every_row_is_complete_and_pinned() -> None:
    listed = rows()
    assert len(listed) > 3000
    for row in listed:
        assert row["label"] in ("real", "fake"), row
        assert row["file"].startswith(f"{row['label']}/{row['group']}/"), row
        assert re.fullmatch(r"[0-9a-f]{64}", row["sha256"]), row
        assert row["licence"], row
        if not row["repo"].startswith("shared:"):  # a public repository: pinned to a full commit
            assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]), row
    assert len({row["file"] for row in listed}) == len(listed)


def test_no_reserved_data_in_the_manifest() -> None:
    reserved = build_data().reserved
    assert not [row for row in rows() if reserved(row)]
    # the check itself: a reserved repository, an Urban100 copy and a held-out split are each refused
    row = {"repo": "example/photos", "path": "photos/a.jpg", "group": "example-photos"}
    assert not reserved(row)
    assert reserved({**row, "repo": "drewnoakes/metadata-extractor-images"})
    assert reserved({**row, "path": "SR_testing_datasets/Urban100/img_001.png"})
    assert reserved({**row, "path": "val_images/fake/1.jpg"})
