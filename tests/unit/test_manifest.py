"""The photo classifier's data manifest: every row complete and pinned, and no repository reserved for
independent evaluation anywhere in it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[2] / "data" / "manifest.csv"
FIELDS = ["file", "label", "group", "repo", "commit", "path", "sha256", "licence"]
# Reserved for independent evaluation: never trained or tuned on, nor any copy of their files
RESERVED = {"dcsan/imagen", "hastingslab-org/ai-human-images", "preangelleo/illustration-style-samples",
            "inf-imagine/sentry", "haywoodsloan/ai-image-detector", "drewnoakes/metadata-extractor-images",
            "ml72/ai-image-classifier-playground", "selvamaribose/cifake-ai-synthetic-image-classification",
            "m0pinxxx/ai-recognition-with-cifake", "sklinderton/vit-real-vs-fake-faces",
            "comfyanonymous/comfyui_examples", "c2pa-org/public-testfiles", "contentauth/c2pa-rs"}


def rows() -> list[dict[str, str]]:
    with open(MANIFEST, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == FIELDS
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


def test_no_reserved_repository_or_held_out_split() -> None:
    for row in rows():
        origin = row["repo"].lower()
        assert not any(reserved in origin for reserved in RESERVED), row
        assert "urban100" not in (row["path"] + row["group"]).lower(), row  # Urban100 is reserved in any copy
        assert "val_images" not in row["path"].lower(), row
