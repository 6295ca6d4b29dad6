"""The photo classifier's data manifest: every row complete and pinned, and no data reserved for
independent evaluation anywhere in it (the check ``scripts/build_data.py`` applies when it writes one)."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

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


def test_face_crops_are_listed_from_their_boxes_and_cut_from_their_source(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    module = build_data()
    picture = np.random.default_rng(3).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    data = cv2.imencode(".png", picture)[1].tobytes()
    source = {"file": "real/people/a.png", "label": "real", "group": "people", "repo": "example/people",
              "commit": "0" * 40, "path": "photos/a.png", "sha256": module._sha(data), "licence": "MIT"}
    boxes = tmp_path / "face_crops.csv"
    boxes.write_text("source,x,y,side,score\nreal/people/a.png,50,20,200,0.9\nreal/people/gone.png,0,0,10,0.9\n")
    [row] = module.face_crop_rows([source], boxes)  # a box for a file no longer listed is dropped
    assert row["file"] == f"real/{module.FACE_CROP_GROUP}/a__50_20_200.png" and row["group"] == module.FACE_CROP_GROUP
    assert row["path"] == "photos/a.png#crop=50,20,200" and row["sha256"] == source["sha256"]
    crop = cv2.imdecode(np.frombuffer(module._crop(data, "crop=50,20,200"), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(crop, picture[20:220, 50:250])
    with pytest.raises(SystemExit, match="cannot cut"):
        module._crop(data, "crop=300,0,200")  # past the right edge


def test_build_writes_each_listed_file_and_removes_files_no_longer_listed(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    module = build_data()
    mirror = tmp_path / "mirrors" / "example+gen" / "repo"
    work = tmp_path / "work"
    picture = np.random.default_rng(5).integers(0, 255, (32, 64, 3), dtype=np.uint8)
    encoded = cv2.imencode(".png", picture)[1].tobytes()
    (work / "samples").mkdir(parents=True)
    (work / "samples" / "sample.png").write_bytes(encoded)
    for command in (["init", "-q", "--bare", str(mirror)],
                    ["--git-dir", str(mirror), "--work-tree", str(work), "add", "samples"],
                    ["--git-dir", str(mirror), "--work-tree", str(work), "-c", "user.name=t", "-c",
                     "user.email=t@example.com", "commit", "-q", "-m", "samples"]):
        module.subprocess.run(["git", *command], check=True, capture_output=True)
    commit = module._resolve_commit(mirror, "HEAD")
    row = {"file": "fake/gen/sample.png", "label": "fake", "group": "gen", "repo": "example/gen",
           "commit": commit, "path": "samples/sample.png", "sha256": module._sha(encoded), "licence": "MIT"}
    crop = {**row, "file": "fake/gen/sample__32_0_32.png", "path": "samples/sample.png#crop=32,0,32"}
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, module.FIELDS)
        writer.writeheader()
        writer.writerows([row, crop])
    out = tmp_path / "photo"
    (out / "fake" / "gone").mkdir(parents=True)
    (out / "fake" / "gone" / "old.png").write_bytes(encoded)  # listed by an older manifest only
    module.build(manifest, tmp_path, tmp_path / "mirrors", out)
    built = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert built == ["fake/gen/sample.png", "fake/gen/sample__32_0_32.png"]
    assert not (out / "fake" / "gone").exists()  # the emptied group folder is removed with its file
    assert (out / "fake" / "gen" / "sample.png").read_bytes() == encoded
    assert np.array_equal(cv2.imread(str(out / "fake" / "gen" / "sample__32_0_32.png")), picture[:, 32:])
    (out / "fake" / "gen" / "sample.png").write_bytes(b"changed")  # a file that differs is written again
    module.build(manifest, tmp_path, tmp_path / "mirrors", out)
    assert (out / "fake" / "gen" / "sample.png").read_bytes() == encoded


def test_grids_cut_into_equal_tiles_and_rectangles_are_cut_exactly() -> None:
    import cv2
    import numpy as np

    module = build_data()
    # a 1x6 strip of 256 px tiles with 2 px padding (as torchvision draws grids): tiles at x = 2 + 258k
    strip = module.grid_boxes("example/gen", "strip.png", "", "grid 1x6", (1550, 260))
    assert [box[0] for box in strip] == [2 + 258 * k for k in range(6)]
    assert {box[1:] for box in strip} == {(2, 256, 256)}
    assert len(module.grid_boxes("example/gen", "a.png", "", "grid 2x2", (1024, 1024))) == 4
    assert module.grid_boxes("example/gen", "a.png", "single", "", (1024, 1024)) == []
    with pytest.raises(SystemExit, match="equal 2x3 grid"):
        module.grid_boxes("example/gen", "a.png", "", "grid 2x3", (1001, 997))
    picture = np.random.default_rng(4).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    data = cv2.imencode(".png", picture)[1].tobytes()
    tile = cv2.imdecode(np.frombuffer(module._crop(data, "crop=10,5,40,30"), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(tile, picture[5:35, 10:50])
