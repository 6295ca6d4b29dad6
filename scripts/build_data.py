"""The photo classifier's data: a committed manifest of every file, and the folder rebuilt from it.

    python scripts/build_data.py manifest --shared ../shared/data --mirrors /path/to/mirrors > data/manifest.csv
    python scripts/build_data.py build data/manifest.csv --shared ../shared/data --mirrors M --out data/photo

``manifest`` lists the sources below, one row per file: where it sits in the data folder, class, group
(generator or source), origin repository, commit, path in that repository, SHA-256 and licence.
``build`` recreates ``OUT/{real,fake}/<group>/<file>`` from the manifest: files of the shared tarballs are
taken from them, files of public repositories from local mirrors (bare git repositories named
``owner+name/repo`` under MIRRORS, as ``git`` clones them) or, where a network exists, downloaded from
GitHub at the pinned commit. Every file's SHA-256 is checked; a mismatch stops the build.

Face crops (group ``face-crops``): square crops of faces in real photos the manifest already lists, from
the boxes in ``data/face_crops.csv`` (found once by ``scripts/face_crops.py``). Their rows carry the source
file's repository, commit, path and SHA-256, with ``#crop=x,y,side`` after the path; ``build`` checks the
source and cuts the crop.

Deduplication by content and dropping near-constant images happen when training reads the folder
(:func:`fakewatch.training.photo_data.decode_all`), so the manifest stays a plain record of the sources.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

FIELDS = ("file", "label", "group", "repo", "commit", "path", "sha256", "licence")
# Reserved for independent evaluation: never trained or tuned on, nor any copy of their files (lower case)
RESERVED = ("dcsan/imagen", "hastingslab-org/ai-human-images", "preangelleo/illustration-style-samples",
            "inf-imagine/sentry", "haywoodsloan/ai-image-detector", "drewnoakes/metadata-extractor-images",
            "ml72/ai-image-classifier-playground", "selvamaribose/cifake-ai-synthetic-image-classification",
            "m0pinxxx/ai-recognition-with-cifake", "sklinderton/vit-real-vs-fake-faces",
            "comfyanonymous/comfyui_examples", "c2pa-org/public-testfiles", "contentauth/c2pa-rs")
RESERVED_ANYWHERE = ("urban100", "val_images")  # Urban100 in any copy; the held-out split of a faces set
SHARED_PHOTOS = "photos-train.tar.gz"
SHARED_FACES = "faces-train.tar.gz"
PHOTOS_LICENCES = {"vladmandic/sd-samples": "MIT", "EliSchwartz/imagenet-sample-images": "ImageNet terms (research)",
                   "jbhuang0604/SelfExSR": "research benchmark"}
# Public repositories brought in beside the shared sets: (repo, commit, label, group, path filter, licence)
REPOSITORIES = (
    ("CompVis/stable-diffusion", "21f890f9da3cfbeaba8e2ac3c425ee9e998d5229", "fake", "compvis-sd1-samples",
     lambda path: path.startswith(("assets/stable-samples/txt2img/", "assets/stable-samples/img2img/mountains"))
     or (path.startswith("assets/a-") and "fire" in path) or path == "assets/the-earth-is-on-fire,-oil-on-canvas.png",
     "CreativeML Open RAIL-M"),
    ("CompVis/stable-diffusion", "21f890f9da3cfbeaba8e2ac3c425ee9e998d5229", "real", "compvis-inpainting-photos",
     lambda path: path.startswith("data/inpainting_examples/") and not path.endswith("_mask.png"),
     "CreativeML Open RAIL-M (photos from Unsplash/Flickr)"),
    # Trained on: phone and camera photos of objects and pets (no red_cartoon: a drawing), and SD 2.x 768 px
    # txt2img grids (outputs only; the repository's other samples show real inputs beside the outputs)
    ("google/dreambooth", "4f887af7970a06fc0cd3adaa1d0b368547d6a1d0", "real", "dreambooth-subjects",
     lambda path: path.startswith("dataset/") and path.endswith(".jpg") and "/red_cartoon/" not in path,
     "CC-BY-4.0 dataset; Unsplash licence or the authors' own photos (dataset/references_and_licenses.txt)"),
    ("Stability-AI/stablediffusion", "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf", "fake", "sd2-768-samples",
     lambda path: path.startswith("assets/stable-samples/txt2img/768/merged-") and path.endswith(".png"),
     "CreativeML Open RAIL++-M"),
    # Trained on: web photos of people (celebrities, couples, a selfie; JPEG from many sources), the face
    # recognition library's test images (its mirrored copy is left out)
    ("serengil/deepface", "243209fd7b46ecdecf72665cc25219f6e8181f25", "real", "deepface-people-photos",
     lambda path: path.startswith("tests/unit/dataset/") and path.endswith(".jpg") and "reflection" not in path,
     "MIT repository; web photos of public figures"),
    # Trained on: photos that image libraries and vision projects ship as examples (COCO val2014 Flickr photos,
    # object-detection and segmentation demo photos, scikit-image's photographs including a page scan);
    # drawings, paintings, diagrams, microscopy and astronomy images are left out
    ("CMU-Perceptual-Computing-Lab/openpose", "5c5d96523ef917bd30301245fdc8343937cae48d", "real",
     "openpose-coco-photos",
     lambda path: path.startswith("examples/media/COCO_") and path.endswith(".jpg"),
     "openpose academic licence; COCO images under their Flickr licences"),
    ("pjreddie/darknet", "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "real", "darknet-photos",
     lambda path: path in {f"data/{name}.jpg" for name in ("dog", "eagle", "giraffe", "horses", "kite", "person")},
     "public domain (YOLO licence)"),
    ("scikit-image/scikit-image", "cd0a3d22b9f359f05618d75d5c7a29b91b4951ca", "real", "skimage-photos",
     lambda path: path in {f"src/_skimage2/data/{name}" for name in (
         "astronaut.png", "brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png",
         "grass.png", "gravel.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
         "rocket.jpg")},
     "BSD-3-Clause repository; each photo's terms in the skimage.data docstrings (public domain, CC0, research)"),
    ("facebookresearch/segment-anything", "dca509fe793f601edb92606367a655c15ac00fdf", "real", "segment-anything-photos",
     lambda path: path.startswith("notebooks/images/") and path.endswith(".jpg"), "Apache-2.0"),
    ("ianare/exif-samples", "5332a9cf0220e9c6c93f88a187daa90808051e10", "real", "exif-samples-cameras",
     lambda path: path.startswith("jpg/") and path.lower().endswith((".jpg", ".jpeg"))
     and not any(skip in path for skip in ("corrupted", "PaintTool", "photoshop", "invalid")),
     "MIT"),
    # Trained on: real photos of people, so that a face is no sign of a generator: a face-recognition library's
    # examples (150 px face crops of TV frames, stock portraits, cast photos), a face detector's web photos
    # of groups (one 3D render among them is left out), and scanned old photographs (autochromes, damaged prints)
    ("justadudewhohacks/face-api.js", "a86f011d72124e5fb93e59d5c4ab98f699dd5c9c", "real", "faceapi-people-photos",
     lambda path: path.startswith("examples/images/") and path.endswith((".jpg", ".png")),
     "MIT repository; TV frames and stock photos"),
    ("Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB", "dffdddda9794a50607cba8f318507a28c1c27cab", "real",
     "face-detector-group-photos",
     lambda path: path.startswith("imgs/") and path.endswith(".jpg") and path != "imgs/22.jpg",
     "MIT repository; web photos of groups of people"),
    ("microsoft/Bringing-Old-Photos-Back-to-Life", "33875eccf4ebcd3665cf38cc56f3a0ce563d3a9c", "real",
     "old-photo-scans",
     lambda path: path.startswith(("test_images/old/", "test_images/old_w_scratch/")) and path.endswith(".png"),
     "MIT repository; historical photographs"),
    # Trained on: the example photos of three face-recognition projects (public figures; dlib's are PASCAL VOC photos)
    ("ageitgey/face_recognition", "2e2dccea9dd0ce730c8d464d0f67c6eebb40c9d1", "real", "face-recognition-examples",
     lambda path: path.startswith(("examples/", "tests/test_images/")) and path.endswith((".jpg", ".jpeg", ".png"))
     and not path.endswith("32bit.png"),
     "MIT repository; web photos of public figures"),
    ("davisking/dlib", "3d40bf5790ca9073c160cebb898800d9f33e12ab", "real", "dlib-face-examples",
     lambda path: path.startswith("examples/faces/") and path.endswith(".jpg"),
     "Boost Software License repository; PASCAL VOC and web photos"),
    ("cmusatyalab/openface", "051475225b5ae335918621077313085bbb7ab5a0", "real", "openface-examples",
     lambda path: path.startswith("images/examples/") and path.endswith(".jpg"),
     "Apache-2.0 repository; web photos of public figures"),
    # Trained on: StyleGAN2 (FFHQ, 256 px) faces from a fork's commit: projections of CelebA-HQ photos into the
    # generator and the interpolations between eight pairs of them, every frame generated (PNG)
    ("rosinality/stylegan2-pytorch", "0b00ff4a7ffa18912ea661edba47d4149bcd4b8e", "fake",
     "stylegan2-face-interpolations",
     lambda path: path.startswith(("output/celeb_pairs/w/10alpha/", "output/celeb_pairs/w_plus/10alpha/"))
     and path.endswith(".png"),
     "MIT"),
    # Trained on: Stable Diffusion 1.x outputs of a 2022 release check (512 px and a few other sizes: txt2img,
    # img2img, variations, outpainting, a face-restored upscale); the masks it also shows are left out
    ("invoke-ai/InvokeAI", "ba4691dae8a3fd260b46a718c412e432cfda36bd", "fake", "invokeai-sd1-outputs",
     lambda path: path.startswith("docs/assets/preflight-checks/outputs/") and path.endswith(".png")
     and ".hair." not in path,
     "Apache-2.0 repository; Stable Diffusion outputs (CreativeML Open RAIL-M)"),
)


FACE_CROPS = Path(__file__).resolve().parents[1] / "data" / "face_crops.csv"  # boxes: scripts/face_crops.py
FACE_CROP_GROUP = "face-crops"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mirror(mirrors: Path, repo: str) -> Path:
    return mirrors / repo.replace("/", "+") / "repo"


def _git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], check=True, capture_output=True).stdout


def _resolve_commit(mirror: Path, commit: str) -> str:
    return _git(mirror, "rev-parse", commit).decode().strip()


def reserved(row: dict[str, str]) -> bool:
    """Whether a manifest row comes from data reserved for independent evaluation."""
    where = (row["repo"] + " " + row["path"] + " " + row["group"]).lower()
    return any(name in where for name in RESERVED + RESERVED_ANYWHERE)


def manifest(shared: Path, mirrors: Path) -> list[dict[str, str]]:
    rows = []
    with tarfile.open(shared / SHARED_PHOTOS) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("MANIFEST.csv"))
        listed = list(csv.DictReader(io.TextIOWrapper(archive.extractfile(member), encoding="utf-8")))  # type: ignore[arg-type]
    for row in listed:
        label, group = row["label"], row["file"].split("/")[1]
        rows.append({"file": f"{label}/{group}/{Path(row['file']).name}", "label": label, "group": group,
                     "repo": f"shared:{SHARED_PHOTOS} (from {row['repo']})", "commit": row["commit"],
                     "path": row["file"], "sha256": row["sha256"], "licence": PHOTOS_LICENCES.get(row["repo"], "")})
    with tarfile.open(shared / SHARED_FACES) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if not member.isfile():
                continue
            label = member.name.split("/")[-2]
            group = "stylegan2-faces" if label == "fake" else "unsplash-portraits"
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            rows.append({"file": f"{label}/{group}/{Path(member.name).name}", "label": label, "group": group,
                         "repo": f"shared:{SHARED_FACES}", "commit": "", "path": member.name, "sha256": _sha(data),
                         "licence": "public hardfakevsrealfaces collection"})
    for repo, commit, label, group, wanted, licence in REPOSITORIES:
        mirror = _mirror(mirrors, repo)
        full = _resolve_commit(mirror, commit)
        for path in _git(mirror, "ls-tree", "-r", "--name-only", full).decode().splitlines():
            if wanted(path):
                try:
                    data = _git(mirror, "show", f"{full}:{path}")
                except subprocess.CalledProcessError:  # a snapshot may hold a listing without the blob
                    print(f"skipped {repo} {path}: not in the local mirror", file=sys.stderr)
                    continue
                name = path.replace("/", "__")
                rows.append({"file": f"{label}/{group}/{name}", "label": label, "group": group, "repo": repo,
                             "commit": full, "path": path, "sha256": _sha(data), "licence": licence})
    rows += face_crop_rows(rows, FACE_CROPS)
    refused = [row for row in rows if reserved(row)]
    if refused:
        raise SystemExit(f"{len(refused)} files come from data reserved for independent evaluation, such as "
                         f"{refused[0]['repo']} {refused[0]['path']}: leave them out of the training data")
    return rows


def face_crop_rows(rows: list[dict[str, str]], boxes: Path) -> list[dict[str, str]]:
    """One row per box of ``boxes`` (written by ``scripts/face_crops.py``): a square crop of a real photo
    already listed, named by its source and box; its path is the source's with ``#crop=x,y,side`` after it,
    and its SHA-256 is the source file's (the crop is cut when the folder is built)."""
    if not boxes.is_file():
        return []
    by_file = {row["file"]: row for row in rows}
    crops = []
    with open(boxes, newline="", encoding="utf-8") as handle:
        for box in csv.DictReader(handle):
            source = by_file.get(box["source"])
            if source is None:
                continue  # a box for a file this manifest no longer lists
            x, y, side = int(box["x"]), int(box["y"]), int(box["side"])
            name = f"{Path(source['file']).stem}__{x}_{y}_{side}.png"
            crops.append({**source, "file": f"real/{FACE_CROP_GROUP}/{name}", "group": FACE_CROP_GROUP,
                          "path": f"{source['path']}#crop={x},{y},{side}"})
    return crops


def _crop(data: bytes, fragment: str) -> bytes:
    """The square ``x,y,side`` of an image's pixels, as a PNG."""
    import cv2
    import numpy as np

    x, y, side = (int(value) for value in fragment.removeprefix("crop=").split(","))
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if picture is None or y + side > picture.shape[0] or x + side > picture.shape[1]:
        raise SystemExit(f"cannot cut the crop {fragment} from its source")
    return cv2.imencode(".png", picture[y:y + side, x:x + side])[1].tobytes()


def _from_archives(rows: list[dict[str, str]], shared: Path) -> dict[str, bytes]:
    """The shared tarballs' files that ``rows`` name, read in one pass over each archive (seeking back in a
    gzip stream means decompressing it again from the start)."""
    wanted: dict[str, dict[str, str]] = {}
    for row in rows:
        name = row["repo"].removeprefix("shared:").split(" ")[0]
        prefix = "photos-train/" if name == SHARED_PHOTOS else ""
        wanted.setdefault(name, {})[prefix + row["path"]] = row["file"]
    found: dict[str, bytes] = {}
    for name, members in wanted.items():
        with tarfile.open(shared / name, "r|*") as archive:
            for member in archive:
                if member.isfile() and member.name in members:
                    found[members[member.name]] = archive.extractfile(member).read()  # type: ignore[union-attr]
    return found


def _from_repository(row: dict[str, str], mirrors: Path) -> bytes:
    mirror = _mirror(mirrors, row["repo"])
    if mirror.is_dir():
        return _git(mirror, "show", f"{row['commit']}:{row['path']}")
    url = f"https://raw.githubusercontent.com/{row['repo']}/{row['commit']}/{row['path']}"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (a fixed https URL)
        return response.read()


def build(manifest_path: Path, shared: Path, mirrors: Path, out: Path) -> None:
    with open(manifest_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # crops are cut again each time (their SHA-256 is their source's); other files when absent or changed
    missing = [row for row in rows if "#crop=" in row["path"] or not (out / row["file"]).is_file()
               or _sha((out / row["file"]).read_bytes()) != row["sha256"]]
    archived = _from_archives([row for row in missing if row["repo"].startswith("shared:")], shared)
    for row in missing:
        path, _, fragment = row["path"].partition("#")
        data = (archived.pop(row["file"], None) if row["repo"].startswith("shared:")
                else _from_repository({**row, "path": path}, mirrors))
        if data is None or _sha(data) != row["sha256"]:
            raise SystemExit(f"{row['file']}: missing, or its SHA-256 differs from the manifest "
                             f"({row['repo']} {row['path']})")
        target = out / row["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_crop(data, fragment) if fragment else data)
    # files the manifest no longer lists (a source dropped from it) would otherwise still be trained on
    listed = {row["file"] for row in rows}
    stale = [path for label in ("real", "fake") for path in sorted((out / label).rglob("*"))
             if path.is_file() and path.relative_to(out).as_posix() not in listed]
    for path in stale:
        path.unlink()
    for folder in {path.parent for path in stale}:  # a group folder left empty goes too
        if not any(folder.iterdir()):
            folder.rmdir()
    print(f"{out}: {len(rows)} files in the manifest, {len(missing)} written, {len(stale)} no longer listed "
          f"removed, all SHA-256 checked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("manifest", "build"))
    parser.add_argument("manifest_file", nargs="?", type=Path)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, default=Path("data/photo"))
    args = parser.parse_args()
    if args.step == "manifest":
        writer = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest(args.shared, args.mirrors))
    else:
        build(args.manifest_file or Path("data/manifest.csv"), args.shared, args.mirrors, args.out)


if __name__ == "__main__":
    main()
