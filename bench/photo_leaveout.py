"""Leave-out evaluation of the photo classifier: generator families with their prompts, sources of real
photos, and whole repositories, each held out in turn; beside it, the in-training (random carve) figure.

    python bench/photo_leaveout.py DATA --backbone-weights W [--out build/photo-leaveout]

DATA is a photo data folder (``make data`` builds one: ``real/<source>/``, ``fake/<generator>/``). The
frozen trunk's features are computed once (cached in OUT) and every fold trains only the top, so the two
heads compared here see exactly the same crops:

    linear    logistic regression on the frozen backbone's pooled features (no fine-tuning)
    finetune  the backbone's last block and head fine-tuned, plus the logit layer
    ensemble  the mean of the two heads' logits (``--heads ensemble``)

Photos-train's fakes share 23 prompts across all generators, so a family fold tests on one third of the
prompts and trains on the other two thirds only (for every generator), and holds one real source out too.
Validation (temperature and threshold) is a random tenth of the images of the trained groups: never a test group.
The repositories the shipped classifier holds out whole (NEVER_TRAINED) are left out of every fold but their own.
Prints a Markdown table and writes OUT/leaveout.json and OUT/groups.png (per-group bar chart).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakewatch.classifiers.base import calibrated  # noqa: E402
from fakewatch.config import Limits  # noqa: E402
from fakewatch.imaging import InputSpec  # noqa: E402
from fakewatch.training import photo, photo_data  # noqa: E402
from fakewatch.training.calibration import fit_temperature  # noqa: E402
from fakewatch.training.group_metrics import balanced_threshold, group_report  # noqa: E402

FOLDS = [  # name, held-out fake groups, held-out real groups, hold prompts out (photos-train families)
    ("FLUX.1 + Sun-Hays80", ["fake/black-forest-labs*"], ["real/sunhays80"], True),
    ("SD 3.5 + BSD100", ["fake/stabilityai*"], ["real/bsd100"], True),
    ("Qwen-Image + ImageNet", ["fake/Qwen*"], ["real/imagenet"], True),
    ("PixArt/SANA + Sun-Hays80", ["fake/PixArt*", "fake/Efficient-Large-Model*"], ["real/sunhays80"], True),
    ("HunyuanDiT + BSD100", ["fake/Tencent-Hunyuan*"], ["real/bsd100"], True),
    ("SDXL finetunes + ImageNet", ["fake/juggernaut*", "fake/dreamshaper*", "fake/Epicrealism*", "fake/icbinp*",
                                   "fake/sdxl*", "fake/AnythingXL*", "fake/perfectdeliberate*", "fake/pony*"],
     ["real/imagenet"], True),
    ("whole repository: faces set (StyleGAN2 + Unsplash)", ["fake/stylegan2-faces"], ["real/unsplash-portraits"],
     False),
    ("whole repositories brought in: DreamBooth photos + SD 2.x 768 px samples", ["fake/sd2-768-samples"],
     ["real/dreambooth-subjects"], False),
    ("the shipped classifier's held-out repositories: CompVis SD 1.x + exif-samples cameras",
     ["fake/compvis-sd1-samples"], ["real/compvis-inpainting-photos", "real/exif-samples-cameras"], False),
]
# Never trained on in any fold (the shipped classifier holds them out whole): tested only in their own fold.
NEVER_TRAINED = ["fake/compvis-sd1-samples", "real/compvis-inpainting-photos", "real/exif-samples-cameras"]
PROMPT_FOLDS = 3


def features(data: Path, weights: Path, out: Path, copies: int, seed: int) -> dict[str, np.ndarray | list]:
    """Decode, crop and run the frozen trunk once; cached in OUT/features.npz."""
    cache = out / "features.npz"
    decoded = photo_data.decode_all(photo_data.discover(data), Limits(100_000_000, 200 << 20))
    samples = decoded.samples
    model = photo.build_network("lite0", 224, weights)
    parts = photo.split_network(model, 1)
    trunk, top = parts.trunk, parts.top
    if cache.is_file():
        stored = np.load(cache)
        return {**{name: stored[name] for name in stored.files}, "samples": samples, "top": top, "pooled": parts.pooled,
                "model": model}
    started = time.perf_counter()
    crops, owners = photo_data.training_crops(decoded.images, 224, copies, seed)
    train_features = photo.trunk_features(trunk, crops)
    spec = InputSpec(size=224, crops="tiles", max_crops=5)
    crops, score_owners = photo_data.scoring_crops(decoded.images, spec)
    score_features = photo.trunk_features(trunk, crops)
    print(f"trunk features: {len(train_features) + len(score_features)} crops in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    np.savez(cache, train=train_features, train_owners=owners, score=score_features, score_owners=score_owners)
    return {"train": train_features, "train_owners": owners, "score": score_features,
            "score_owners": score_owners, "samples": samples, "top": top, "pooled": parts.pooled,
                "model": model}


def carve_fold(samples: list, fakes: list[str], reals: list[str], prompts: bool, fold: int,
               seed: int, validation: str = "random") -> dict[str, np.ndarray]:
    all_prompts = sorted({s.prompt for s in samples if s.prompt})
    test_prompts = set(all_prompts[fold % PROMPT_FOLDS::PROMPT_FOLDS]) if prompts else set()
    held = fakes + reals
    test, rest = [], []
    for index, sample in enumerate(samples):
        if photo_data.matches(sample.group, held):
            if sample.label == 0 or not prompts or sample.prompt in test_prompts:
                test.append(index)
        elif photo_data.matches(sample.group, NEVER_TRAINED):
            continue
        elif sample.prompt is None or sample.prompt not in test_prompts:
            rest.append(index)
    if validation == "groups":
        return _with_group_validation(samples, test, rest, seed)
    return _with_validation(samples, test, rest, seed)


def _with_validation(samples: list, test: list[int], rest: list[int], seed: int) -> dict[str, np.ndarray]:
    """Validation: a random 10% of the images of the groups that are trained on (never a test group)."""
    rng = np.random.default_rng(seed)
    valid = [i for i in rest if rng.random() < 0.1]
    train = sorted(set(rest) - set(valid))
    return {"train": np.array(train), "valid": np.array(sorted(valid)), "test": np.array(sorted(test))}


def _with_group_validation(samples: list, test: list[int], rest: list[int], seed: int,
                           share: float = 0.15) -> dict[str, np.ndarray]:
    """Validation from sources the network does not train on: whole non-test groups holding about ``share``
    of each label's images (:func:`photo_data.validation_groups`, as `fakewatch train-photo --validation
    groups` draws them)."""
    chosen = photo_data.validation_groups(samples, rest, share, seed)
    valid = [i for i in rest if samples[i].group in chosen]
    train = sorted(set(rest) - set(valid))
    return {"train": np.array(train), "valid": np.array(sorted(valid)), "test": np.array(sorted(test))}


def random_carve(samples: list, seed: int) -> dict[str, np.ndarray]:
    kept = np.array([i for i, sample in enumerate(samples) if not photo_data.matches(sample.group, NEVER_TRAINED)])
    order = kept[np.random.default_rng(seed).permutation(len(kept))]
    cut = len(order) // 10
    return {"test": np.sort(order[:cut]), "valid": np.sort(order[cut:2 * cut]), "train": np.sort(order[2 * cut:])}


def _rows(owners: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop rows belonging to the images ``members``, and each row's position in ``members``."""
    position = np.full(owners.max() + 1, -1)
    position[members] = np.arange(len(members))
    rows = np.flatnonzero(position[owners] >= 0)
    return rows, position[owners[rows]]


class Heads:
    """Both heads, trained on the same features for one fold."""

    def __init__(self, cached: dict, epochs: int, seed: int) -> None:
        self.cached, self.epochs, self.seed = cached, epochs, seed
        self.top = cached["top"]
        self.initial = self.top.get_weights()
        pooled = photo_pooled(cached["pooled"])
        self.pooled_train = pooled(cached["train"])
        self.pooled_score = pooled(cached["score"])
        self.done: dict[tuple[str, int], dict[str, np.ndarray]] = {}

    def logits(self, head: str, parts: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
        key = (head, id(parts))
        if key not in self.done:
            self.done[key] = self._logits(head, parts, labels)
        return self.done[key]

    def _logits(self, head: str, parts: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
        if head == "ensemble":  # the mean of both heads' image logits (each head trained once per fold)
            linear, finetune = self.logits("linear", parts, labels), self.logits("finetune", parts, labels)
            return {name: (linear[name] + finetune[name]) / 2 for name in linear}
        rows, _ = _rows(self.cached["train_owners"], parts["train"])
        train_labels = labels[self.cached["train_owners"][rows]]
        if head == "linear":
            model = fit_logistic(self.pooled_train[rows], train_labels, self.seed)
            score = lambda r: self.pooled_score[r] @ model[0] + model[1]  # noqa: E731
        else:
            self.top.set_weights(self.initial)
            photo.fit_top(self.top, self.cached["train"][rows], train_labels, self.epochs, 3e-4, self.seed)
            score = lambda r: np.asarray(self.top(self.cached["score"][r].astype(np.float32)))[:, 0]  # noqa: E731
        out = {}
        for name in ("valid", "test"):
            rows, position = _rows(self.cached["score_owners"], parts[name])
            crop_logits = np.concatenate([score(rows[s:s + 512]) for s in range(0, len(rows), 512)])
            out[name] = photo_data.mean_by_owner(crop_logits.astype(np.float64), position, len(parts[name]))
        return out


def photo_pooled(pool):  # type: ignore[no-untyped-def]
    return lambda features: np.concatenate([np.asarray(pool(features[s:s + 512].astype(np.float32)))
                                            for s in range(0, len(features), 512)])


def fit_logistic(features: np.ndarray, labels: np.ndarray, seed: int, steps: int = 400,
                 l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression by full-batch gradient descent (Adam)."""
    mean, scale = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / scale
    weight = np.where(labels == 1, 0.5 / labels.mean(), 0.5 / (1 - labels.mean()))
    w, b = np.zeros(x.shape[1]), 0.0
    m, v = np.zeros(x.shape[1] + 1), np.zeros(x.shape[1] + 1)
    for step in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        error = (p - labels) * weight / len(labels)
        grad = np.concatenate([x.T @ error + l2 * w, [error.sum()]])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        update = 0.01 * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        w, b = w - update[:-1], b - update[-1]
    return w / scale, float(b - (mean / scale) @ w)


def evaluate_fold(heads: Heads, head: str, samples: list, parts: dict[str, np.ndarray]) -> dict:
    labels = np.array([s.label for s in samples], np.float64)
    logits = heads.logits(head, parts, labels)
    temperature = fit_temperature(logits["valid"], labels[parts["valid"]])
    threshold = balanced_threshold(calibrated(logits["valid"], temperature), labels[parts["valid"]])
    test = [samples[i] for i in parts["test"]]
    return group_report(test, calibrated(logits["test"], temperature), threshold, 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--backbone-weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("build/photo-leaveout"))
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--heads", default="linear,finetune")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--validation", choices=("random", "groups"), default="random",
                        help="random: a tenth of the trained groups' images; groups: whole groups left out of "
                             "training (unseen generators and sources of real photos)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cached = features(args.data, args.backbone_weights, args.out, args.copies, args.seed)
    samples = cached["samples"]
    heads = Heads(cached, args.epochs, args.seed)
    folds = [(name, carve_fold(samples, fakes, reals, prompts, index, args.seed, args.validation))
             for index, (name, fakes, reals, prompts) in enumerate(FOLDS)]
    folds.insert(0, ("in-training: random 10% carve of all groups", random_carve(samples, args.seed)))
    results: dict[str, dict] = {}
    print("| head | held out | test images | balanced accuracy | ROC-AUC | real flagged fake | ECE |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for head in args.heads.split(","):
        for name, parts in folds:
            report = evaluate_fold(heads, head, samples, parts)
            results.setdefault(head, {})[name] = report
            totals = report["totals"]
            print(f"| {head} | {name} | {totals['count']} | {totals.get('balanced_accuracy', float('nan')):.3f} | "
                  f"{totals.get('roc_auc', float('nan')):.3f} | {totals.get('false_positive_rate', 0):.3f} | "
                  f"{totals['ece']:.3f} |", flush=True)
        held = [results[head][name]["totals"] for name, _ in folds[1:]]
        print(f"| {head} | **mean of leave-out folds** | | {np.mean([t['balanced_accuracy'] for t in held]):.3f} | "
              f"{np.mean([t['roc_auc'] for t in held]):.3f} | "
              f"{np.mean([t['false_positive_rate'] for t in held]):.3f} | {np.mean([t['ece'] for t in held]):.3f} |",
              flush=True)
    (args.out / "leaveout.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    from fakewatch.training import plots

    for head in results:
        merged = {group: row for report in list(results[head].values())[1:] for group, row in report["groups"].items()}
        plots.group_bars(args.out / f"groups-{head}.png", merged, f"held-out groups ({head} head)")
    print(f"wrote {args.out}/leaveout.json and per-group charts")


if __name__ == "__main__":
    main()
