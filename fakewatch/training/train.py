"""Train a classifier on a labelled folder and publish it as a registry version.

Reads top to bottom: data, network, fit with validation, calibrate, evaluate, publish.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fakewatch.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fakewatch import registry as registry_module  # noqa: E402
from fakewatch.classifiers.base import calibrated  # noqa: E402
from fakewatch.classifiers.export import export_version, save_check_batch  # noqa: E402
from fakewatch.classifiers.keras_runtime import KerasClassifier, batched_logits, logits_function  # noqa: E402
from fakewatch.imaging import InputSpec  # noqa: E402
from fakewatch.registry import ClassifierVersion, Registry  # noqa: E402
from fakewatch.training import architectures, evaluate  # noqa: E402
from fakewatch.training.augment import augment  # noqa: E402
from fakewatch.training.calibration import choose_threshold, fit_temperature  # noqa: E402
from fakewatch.training.dataset import Dataset, Split, load_dataset  # noqa: E402
from fakewatch.training.options import TrainOptions  # noqa: E402

log = logging.getLogger(__name__)


def input_pipeline(split: Split, batch_size: int, training: bool, seed: int) -> tf.data.Dataset:
    """A tf.data pipeline over decoded uint8 images; augmentation and shuffling only when training."""
    data = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    if training:
        data = data.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        data = data.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    data = data.batch(batch_size)
    data = data.map(lambda images, labels: (tf.cast(images, tf.float32), labels))
    return data.prefetch(tf.data.AUTOTUNE)


def class_weights(labels: np.ndarray) -> dict[int, float] | None:
    """Balanced class weights when the classes differ in size by more than 10%; else None."""
    fake = float(labels.sum())
    real = float(len(labels) - fake)
    if min(fake, real) == 0 or max(fake, real) / min(fake, real) <= 1.1:
        return None
    return {0: len(labels) / (2 * real), 1: len(labels) / (2 * fake)}


def domain_for(spec: InputSpec) -> dict[str, Any]:
    """The images a whole-frame classifier is for: thumbnails when it sees 64 px or less, else every size."""
    if spec.size <= registry_module.THUMBNAIL_MAX:
        thumbnail = registry_module.THUMBNAIL
        return {"name": thumbnail.name, "min_side": thumbnail.min_side, "max_side": thumbnail.max_side,
                "description": thumbnail.description}
    return {"name": registry_module.CATCH_ALL, "min_side": 1, "max_side": None,
            "description": f"every size, resized whole to {spec.size} px"}


def build_network(options: TrainOptions, spec: InputSpec) -> keras.Model:
    if options.parent is not None:
        log.info("fine-tuning from %s", options.parent.version)
        options.parent.check_weights()
        return keras.saving.load_model(options.parent.weights, compile=False)
    return architectures.build(options.arch, spec, weights=options.weights, width=options.width,
                               blocks=options.blocks, stem=options.stem)


def fit(model: keras.Model, dataset: Dataset, options: TrainOptions, checkpoint: Path) -> dict[str, list[float]]:
    steps = options.epochs * -(-len(dataset.splits["train"]) // options.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
    ]
    history = model.fit(
        input_pipeline(dataset.splits["train"], options.batch_size, True, options.seed),
        validation_data=input_pipeline(dataset.splits["valid"], 256, False, options.seed),
        epochs=options.epochs,
        class_weight=class_weights(dataset.splits["train"].labels),
        callbacks=callbacks,
        verbose=options.verbose,
    )
    return {key: [float(value) for value in values] for key, values in history.history.items()}


def _card(options: TrainOptions, spec: InputSpec, dataset: Dataset, model: keras.Model,
          temperature: float, threshold: float) -> dict[str, Any]:
    arch = options.parent.card["architecture"] if options.parent else options.arch
    return {
        "version": registry_module.new_version_id(arch),
        "architecture": arch,
        "network": model.name,
        "parameters": int(model.count_params()),
        "input_spec": spec.to_dict(),
        "domain": domain_for(spec),
        "output": "p_fake = sigmoid(logit / temperature); 1 = fake",
        "threshold": threshold,
        "temperature": temperature,
        "uncertain_margin": options.uncertain_margin,
        "training_data": {"description": options.description or f"labelled folder {options.data_dir}",
                          **dataset.describe()},
        "training": {"epochs_run": None, "batch_size": options.batch_size, "learning_rate": options.learning_rate,
                     "seed": options.seed, "schedule": "cosine decay over the epoch budget",
                     "augmentation": "flip, shift, brightness/contrast, "
                     "JPEG re-compression q60-95 (p=0.25), down-up resize 0.6-0.9 (p=0.15)",
                     "command": options.command},
        "metrics": {},
        "parent": options.parent.version if options.parent else None,
        "keras_version": keras.__version__,
    }


def train(options: TrainOptions, registry: Registry, log_progress: Callable[[str], None] = log.info,
          activate: bool = False) -> ClassifierVersion:
    """Train, calibrate, evaluate and publish one classifier version; returns it."""
    keras.utils.set_random_seed(options.seed)
    spec = options.parent.spec if options.parent else InputSpec(size=options.input_size)

    log_progress(f"loading {options.data_dir} at {spec.size}x{spec.size}")
    dataset = load_dataset(options.data_dir, spec, options.limits, valid_fraction=options.valid_fraction,
                           test_fraction=options.test_fraction, seed=options.seed, extra=options.extra_dirs,
                           progress=lambda done, total: log_progress(f"decoded {done}/{total} files"))
    log_progress(f"data: {dataset.describe()}")

    model = build_network(options, spec)
    staging = Path(tempfile.mkdtemp(prefix="fakewatch-train-"))
    try:
        history = fit(model, dataset, options, staging / registry_module.WEIGHTS_FILE)
        save_for_inference(model, staging / registry_module.WEIGHTS_FILE)  # best weights (early stopping)

        validation = dataset.splits["valid"]
        logits = batched_logits(logits_function(model), validation.images, 512)
        temperature = fit_temperature(logits, validation.labels)
        threshold = choose_threshold(calibrated(logits, temperature), validation.labels)
        log_progress(f"calibrated on validation: temperature {temperature:.3f}, threshold {threshold:.3f}")

        card = _card(options, spec, dataset, model, temperature, threshold)
        card["training"]["epochs_run"] = len(history.get("loss", []))
        registry_module.write_card(staging, card)
        held_out = dataset.splits.get("test", validation)
        results = evaluate.evaluate_split(KerasClassifier(registry_module.read_version(staging)), held_out,
                                          options.uncertain_margin, options.limits)
        metrics = evaluate.write_report(staging, results, held_out.labels, history)
        card["metrics"] = {"evaluated_on": "test" if "test" in dataset.splits else "valid", **metrics}
        card["history"] = history
        registry_module.write_card(staging, card)
        save_check_batch(staging, held_out.images)
        record = export_version(staging)  # refuses to publish an export that disagrees with the network
        log_progress(f"exported to ONNX: largest |delta p_fake| {record['max_abs_delta_p_fake']:.1e} "
                     f"on {record['check_images']} held-out images")
        version = registry.publish(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if activate:
        registry.activate(version.version)
    return version


def save_for_inference(model: keras.Model, path: Path) -> None:
    """Save the network and its weights without the optimizer's state, which a ``.keras`` file would
    otherwise carry (Adam keeps two more copies of every weight): a third of the size, and loading
    never needs it (fine-tuning starts a fresh optimizer)."""
    bare = model.__class__.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(path)

