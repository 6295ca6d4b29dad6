"""Leave-repository-out evaluation of the photo classifier's two views and their fusion.

    python bench/photo_fusion.py DATA --manifest data/manifest.csv --backbone-weights W
        [--seeds 1337,2024] [--folds all] [--max-crops 5] [--pixels-per-crop 700000] [--out build/photo-fusion]

Each fold holds out whole repositories (every group whose files come from them, with their prompts) and
trains on the rest, as the shipped recipe trains: the backbone's last block and head fine-tuned on
augmented crops (`photo.fit_top` on cached trunk features), the residual patch network from scratch on the
same crops (`npr.train`), and the logistic fusion of both fitted on validation images (a random tenth of
the trained groups). The threshold is the one that flags at most ``--target-fpr`` of the validation real
photos. Every fold is run with every seed; the table gives the mean and the spread (min-max) over seeds of
each view alone and of the fusion, on the clean held-out images and after one social-media pass
(`photo_data.social_media_pass`: downscale, crop, JPEG or WebP). Per era and family rows come from the
held-out fake groups' repositories. Writes OUT/fusion.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakewatch.classifiers.base import calibrated  # noqa: E402
from fakewatch.config import Limits  # noqa: E402
from fakewatch.imaging import InputSpec  # noqa: E402
from fakewatch.training import fusion, npr, photo, photo_data  # noqa: E402
from fakewatch.training.calibration import fit_temperature  # noqa: E402
from fakewatch.training.group_metrics import group_report  # noqa: E402

# name -> repositories held out whole (prefix of the manifest's repo column); every fold holds out at least
# one source of fakes and one of real photos, so balanced accuracy and the flagged share are both defined
FOLDS = {
    "GANs: StyleGAN v1 checkpoints + BSDS500 photos": ["justinpinkney/awesome-pretrained-stylegan",
                                                      "seyed-mohammadreza-mousavi/HMEGS-BSDS500-Dataset"],
    "2021-2022 diffusion: latent diffusion, minDALL-E, DALL-E Mega + web JPEGs (FBCNN)": [
        "CompVis/latent-diffusion", "kakaobrain/minDALL-E", "kuprel/min-dalle", "jiaxi-jiang/FBCNN"],
    "closed API: GPT-4o / gpt-image-1 + Bing thumbnails": ["jamez-bondos/awesome-gpt4o-images",
                                                          "tonyc726/bing-wallpaper-robot"],
    "closed API: Midjourney v5-v6 + film scans (McMaster)": ["genevievecurry/wordle", "cesardgm/react19",
                                                            "JingyunLiang/SwinIR"],
    "2023-2024 open models: HunyuanDiT, Kolors + DreamBooth photos": ["Tencent/HunyuanDiT", "Kwai-Kolors/Kolors",
                                                                      "google/dreambooth"],
    "2025-2026 API: Nano Banana + Krea 2 + people photos (deepface)": [
        "PicoTrex/Awesome-Nano-Banana-images", "songguoxs/gpt4o-image-prompts", "sjh9714/awesome-krea-2",
        "serengil/deepface"],
    "faces: StyleGAN2 faces set + Unsplash portraits": ["shared:faces-train.tar.gz"],
    "SD 1.x: CompVis samples + exif-samples cameras": ["CompVis/stable-diffusion", "ianare/exif-samples"],
}
ERAS = {  # repository prefix -> era of its fakes
    "GANs": ("justinpinkney", "rosinality", "a312863063", "lucidrains/lightweight-gan", "shared:faces-train",
             "huggingface/pytorch-pretrained-BigGAN", "ajbrock"),
    "2021-2022 diffusion": ("CompVis", "kakaobrain", "kuprel", "lucidrains/big-sleep", "lucidrains/deep-daze",
                            "yang-song", "hojonathanho", "ai-forever", "invoke-ai", "openai/dalle-2-preview"),
    "2023-2024 open models": ("Tencent", "Kwai-Kolors", "Stability-AI", "Dalabad", "SupaGruen", "deep-floyd",
                              "shared:photos-train", "FoundationVision"),
    "2025-2026 API services": ("PicoTrex", "songguoxs", "sjh9714", "jamez-bondos", "freestylefly", "genevievecurry",
                               "cesardgm", "zeyofu", "Pixmind-io", "Yehia-Fahmy"),
}


def repositories(manifest: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The repository each file comes from (the manifest's ``repo`` column; a crop's is its source's), by the
    file's path in the data folder, and by ``label/group`` (the last file's, for the per-era rows)."""
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_file = {row["file"]: row["repo"].split(" (")[0] for row in rows}
    return by_file, {f"{row['label']}/{row['group']}": by_file[row["file"]] for row in rows}


def era_of(repo: str) -> str:
    return next((era for era, prefixes in ERAS.items() if repo.startswith(prefixes)), "other")


def carve(samples: list, data: Path, repos: dict[str, str], held: list[str], seed: int) -> dict[str, np.ndarray]:
    """Test: every image whose file comes from a held-out repository; validation: a random tenth of the rest."""
    test = [i for i, s in enumerate(samples)
            if repos.get(Path(s.path).relative_to(data).as_posix(), "").startswith(tuple(held))]
    rest = [i for i in range(len(samples)) if i not in set(test)]
    rng = np.random.default_rng(seed)
    valid = [i for i in rest if rng.random() < 0.1]
    train = sorted(set(rest) - set(valid))
    return {"train": np.array(train), "valid": np.array(sorted(valid)), "test": np.array(sorted(test))}


def rows_of(owners: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    position = np.full(max(owners.max(initial=0), members.max(initial=0)) + 1, -1)
    position[members] = np.arange(len(members))
    rows = np.flatnonzero(position[owners] >= 0)
    return rows, position[owners[rows]]


class Cache:
    """Every crop the folds need, decoded and cropped once, and the frozen trunk's features of each."""

    def __init__(self, data: Path, weights: Path, copies: int, max_crops: int, pixels_per_crop: int,
                 seed: int, tested_paths: set[str] | None = None) -> None:
        started = time.perf_counter()
        decoded = photo_data.decode_all(photo_data.discover(data), Limits(100_000_000, 200 << 20))
        self.samples = decoded.samples
        self.labels = np.array([s.label for s in self.samples], np.float64)
        model = photo.build_network("lite0", 224, weights)
        parts = photo.split_network(model, 1)
        self.trunk, self.top = parts.trunk, parts.top
        self.initial = self.top.get_weights()
        self.train_crops, self.train_owners = photo_data.training_crops(decoded.images, 224, copies, seed)
        self.train_features = photo.trunk_features(self.trunk, self.train_crops)
        spec = InputSpec(size=224, crops="tiles", max_crops=max_crops, pixels_per_crop=pixels_per_crop)
        rng = np.random.default_rng(seed + 1)
        self.social = [i for i, sample in enumerate(self.samples)  # the social pass is for test images only
                       if tested_paths is None or sample.path in tested_paths]
        shared = (photo_data.social_media_pass(decoded.images[i], rng) for i in self.social)  # streamed
        self.score: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for condition, images in (("clean", iter(decoded.images)), ("social", shared)):
            crops, owners = photo_data.scoring_crops(images, spec)
            if condition == "social":  # owners back to sample indices
                owners = np.asarray(self.social)[owners]
            self.score[condition] = (crops, owners, photo.trunk_features(self.trunk, crops))
        print(f"cache: {len(self.samples)} images, {len(self.train_crops)} training crops, "
              f"{sum(len(v[0]) for v in self.score.values())} scoring crops, {time.perf_counter() - started:.0f} s",
              flush=True)

    def view_logits(self, parts: dict[str, np.ndarray], seed: int, epochs: int, width: int,
                    residual_epochs: int) -> dict[str, dict[str, np.ndarray]]:
        """{condition/split: {semantic, residual}} image logits for one fold and seed."""
        rows, _ = rows_of(self.train_owners, parts["train"])
        train_labels = self.labels[self.train_owners[rows]]
        self.top.set_weights(self.initial)
        photo.fit_top(self.top, self.train_features[rows], train_labels, epochs, 3e-4, seed)
        residual, _ = npr.train(self.train_crops[rows], train_labels, width, residual_epochs, seed)
        out: dict[str, dict[str, np.ndarray]] = {}
        for condition, (crops, owners, features) in self.score.items():
            for split in ("valid", "test"):
                if condition == "social" and split == "valid":
                    continue
                crop_rows, position = rows_of(owners, parts[split])
                semantic = np.concatenate([np.asarray(self.top(features[crop_rows[s:s + 512]].astype(np.float32)))
                                           for s in range(0, len(crop_rows), 512)])[:, 0]
                residual_logits = npr.crop_logits(residual, crops[crop_rows])
                count = len(parts[split])
                out[f"{condition}/{split}"] = {
                    "semantic": photo_data.mean_by_owner(semantic.astype(np.float64), position, count),
                    "residual": photo_data.mean_by_owner(residual_logits, position, count)}
        return out


def reports(cache: Cache, parts: dict[str, np.ndarray], logits: dict[str, dict[str, np.ndarray]],
            target_fpr: float) -> dict[str, dict[str, dict]]:
    """{view: {condition: group_report}} with temperature, fusion and threshold fitted on validation."""
    valid_labels = cache.labels[parts["valid"]]
    valid = logits["clean/valid"]
    combined = fusion.fit_fusion(np.column_stack([valid["semantic"], valid["residual"]]), valid_labels)
    test_samples = [cache.samples[i] for i in parts["test"]]
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for view in ("semantic", "residual", "fused"):
        def of(split: str, view: str = view) -> np.ndarray:
            both = logits[split]
            if view == "fused":
                return combined.apply(np.column_stack([both["semantic"], both["residual"]]))
            return both[view]
        temperature = fit_temperature(of("clean/valid"), valid_labels)
        valid_p = calibrated(of("clean/valid"), temperature)
        threshold = fusion.operating_threshold(valid_p[valid_labels == 0], target_fpr)
        for condition in ("clean", "social"):
            out[view][condition] = group_report(test_samples, calibrated(of(f"{condition}/test"), temperature),
                                                threshold, 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--manifest", type=Path, default=Path("data/manifest.csv"))
    parser.add_argument("--backbone-weights", type=Path, required=True)
    parser.add_argument("--folds", default="1,2,3,6", help="comma-separated fold numbers (1..), or all")
    parser.add_argument("--seeds", default="1337,2024")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--max-crops", type=int, default=5)
    parser.add_argument("--pixels-per-crop", type=int, default=700_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--residual-width", type=int, default=8)
    parser.add_argument("--residual-epochs", type=int, default=6)
    parser.add_argument("--target-fpr", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path("build/photo-fusion"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(value) for value in args.seeds.split(",")]
    file_repos, repos = repositories(args.manifest)
    names = list(FOLDS)
    chosen = range(1, len(names) + 1) if args.folds == "all" else [int(v) for v in args.folds.split(",")]
    samples = photo_data.discover(args.data)  # the test images of the chosen folds get the social-media pass
    held = tuple(prefix for number in chosen for prefix in FOLDS[names[number - 1]])
    tested_paths = {s.path for s in samples
                    if file_repos.get(Path(s.path).relative_to(args.data).as_posix(), "").startswith(held)}
    cache = Cache(args.data, args.backbone_weights, args.copies, args.max_crops, args.pixels_per_crop, seeds[0],
                  tested_paths)
    results: dict[str, dict] = {}
    for number in chosen:
        name = names[number - 1]
        for seed in seeds:
            started = time.perf_counter()
            parts = carve(cache.samples, args.data, file_repos, FOLDS[name], seed)
            if not len(parts["test"]) or len(set(cache.labels[parts["test"]])) < 2:
                print(f"fold {name}: no held-out images of both labels here; skipped", flush=True)
                break
            logits = cache.view_logits(parts, seed, args.epochs, args.residual_width, args.residual_epochs)
            results.setdefault(name, {})[str(seed)] = reports(cache, parts, logits, args.target_fpr)
            totals = results[name][str(seed)]["fused"]["clean"]["totals"]
            views = results[name][str(seed)]
            print(f"fold {number} seed {seed}: {name}: {totals['count']} images; balanced / flagged: " + ", ".join(
                f"{view} {views[view]['clean']['totals']['balanced_accuracy']:.3f} / "
                f"{views[view]['clean']['totals']['false_positive_rate']:.3f}" for view in views)
                  + f" ({time.perf_counter() - started:.0f} s)", flush=True)
            (args.out / "fusion.json").write_text(json.dumps(results, indent=1, default=float) + "\n",
                                                  encoding="utf-8")
    print_tables(results, repos)


def _spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})" if values else "-"


def print_tables(results: dict[str, dict], repos: dict[str, str]) -> None:
    """Per fold, per view and condition: balanced accuracy, ROC-AUC and real flagged (mean and seed range);
    then the mean over folds, and the share of held-out fakes caught per era."""
    print("\n| held out | view | balanced accuracy | ROC-AUC | real flagged | after social pass: balanced | flagged |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    seeds = len(next(iter(results.values())))
    means: dict[tuple[str, str, str], list[list[float]]] = defaultdict(lambda: [[] for _ in range(seeds)])
    for name, by_seed in results.items():
        for view in ("semantic", "residual", "fused"):
            cells = []
            for condition in ("clean", "social"):
                for metric in (("balanced_accuracy", "roc_auc", "false_positive_rate") if condition == "clean"
                               else ("balanced_accuracy", "false_positive_rate")):
                    values = [by_seed[seed][view][condition]["totals"][metric] for seed in by_seed]
                    cells.append(_spread(values))
                    for index, value in enumerate(values):
                        means[(view, condition, metric)][index].append(value)
            print(f"| {name} | {view} | " + " | ".join(cells) + " |")
    for view in ("semantic", "residual", "fused"):
        cells = []
        for condition in ("clean", "social"):
            for metric in (("balanced_accuracy", "roc_auc", "false_positive_rate") if condition == "clean"
                           else ("balanced_accuracy", "false_positive_rate")):
                per_seed = [float(np.mean(v)) for v in means[(view, condition, metric)] if v]
                cells.append(_spread(per_seed))
        print(f"| **mean of folds** | {view} | " + " | ".join(cells) + " |")
    print("\n| era of held-out fakes | view | fakes | caught (clean) | caught (after social pass) |")
    print("| --- | --- | --- | --- | --- |")
    for view in ("semantic", "residual", "fused"):
        caught: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0])
        for by_seed in results.values():
            for seed_result in by_seed.values():
                for condition, column in (("clean", 1), ("social", 2)):
                    for group, row in seed_result[view][condition]["groups"].items():
                        if not group.startswith("fake/"):
                            continue
                        era = era_of(repos.get(group, ""))
                        hit = row["count"] * (1 - row.get("miss_rate", row.get("error_rate", 0.0)))
                        caught[era][column] += hit
                        if condition == "clean":
                            caught[era][0] += row["count"]
        for era, (count, clean, social) in sorted(caught.items()):
            print(f"| {era} | {view} | {count:.0f} | {clean / count:.3f} | {social / count:.3f} |")


if __name__ == "__main__":
    main()
