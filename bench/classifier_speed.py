"""Raw throughput and start-up of the active classifier in each runtime, on the same images in one run:
TensorFlow/Keras (a compiled call), the ONNX export in ONNX Runtime (the `lite` runtime), LiteRT (when
`ai-edge-litert` is installed; converted here, for comparison only) and naive per-image model.predict.

    python bench/classifier_speed.py [--images 8192] [--naive 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import table

from fakewatch.config import load_settings
from fakewatch.registry import ClassifierVersion, Registry

BATCHES = (1, 32, 256, 1024)
STARTUP = {  # a fresh interpreter: import the runtime, load the classifier, classify one image
    "keras": "from fakewatch.classifiers.keras_runtime import KerasClassifier as C",
    "lite (ONNX Runtime)": "from fakewatch.classifiers.onnx_runtime import OnnxClassifier as C",
}


def rates(predict: Any, images: np.ndarray, batch: int) -> tuple[int, float]:
    count = min(len(images), 200) if batch == 1 else len(images)
    predict(images[: batch * 2], batch)  # warm up: trace and allocate
    started = time.perf_counter()
    for start in range(0, count, batch):
        predict(images[start:start + batch], batch)
    return count, count / (time.perf_counter() - started)


def startup_seconds(version: ClassifierVersion, runtime: str) -> float:
    code = (f"import time, numpy as np; t = time.perf_counter()\n{STARTUP[runtime]}\n"
            f"from fakewatch.registry import read_version\n"
            f"c = C(read_version(__import__('pathlib').Path({str(version.path)!r})))\n"
            f"c.predict(np.zeros((1, {version.spec.size}, {version.spec.size}, 3), np.uint8))\n"
            f"print(time.perf_counter() - t)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(output.strip().splitlines()[-1])


def litert_predictor(version: ClassifierVersion) -> Any:
    """The same network converted to LiteRT (float32), or None when ai-edge-litert is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from fakewatch.classifiers.keras_runtime import fold_batch_norms

    network = fold_batch_norms(keras.saving.load_model(version.weights, compile=False))
    logits = keras.Model(network.inputs, network.get_layer("logit").output)
    size = version.spec.size

    @tf.function(input_signature=[tf.TensorSpec((None, size, size, 3), tf.uint8)])
    def serve(batch: tf.Tensor) -> tf.Tensor:
        return tf.reshape(logits(tf.cast(batch, tf.float32), training=False), (-1,))

    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions(
        [convert_variables_to_constants_v2(serve.get_concrete_function())]).convert()
    path = Path(tempfile.mkdtemp()) / "classifier.tflite"
    path.write_bytes(flatbuffer)
    interpreter = Interpreter(model_path=str(path), num_threads=2)
    tensor_in, tensor_out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    state = {"size": 0}

    def predict(batch: np.ndarray, _: int) -> np.ndarray:
        if len(batch) != state["size"]:
            interpreter.resize_tensor_input(tensor_in, list(batch.shape))
            interpreter.allocate_tensors()
            state["size"] = len(batch)
        interpreter.set_tensor(tensor_in, batch)
        interpreter.invoke()
        return interpreter.get_tensor(tensor_out)

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--naive", type=int, default=100, help="images for the per-image predict loop")
    parser.add_argument("--domain", default="thumbnail", help="whose active classifier to measure")
    args = parser.parse_args()

    from fakewatch.classifiers.keras_runtime import KerasClassifier
    from fakewatch.classifiers.onnx_runtime import OnnxClassifier

    version = Registry(load_settings()).resolve(args.domain)
    images = np.random.default_rng(0).integers(0, 255, (args.images, version.spec.size, version.spec.size, 3),
                                               dtype=np.uint8)
    keras_runtime, onnx_runtime = KerasClassifier(version), OnnxClassifier(version)
    one_thread = OnnxClassifier(version, threads=1)  # how well the runtime uses the second core
    runtimes: dict[str, Any] = {
        "keras (TensorFlow, compiled call)": lambda batch, _: keras_runtime.logits(batch),
        "lite (ONNX Runtime)": lambda batch, _: onnx_runtime.logits(batch),
        "lite (ONNX Runtime), one thread": lambda batch, _: one_thread.logits(batch),
    }
    litert = litert_predictor(version)
    if litert is not None:
        runtimes["LiteRT (float32, not shipped)"] = litert
    rows = []
    for name, predict in runtimes.items():
        for batch in BATCHES:
            count, rate = rates(predict, images, batch)
            rows.append([name, batch, count, f"{rate:,.0f}"])

    import keras

    model = keras.saving.load_model(version.weights, compile=False)
    model.predict(images[:1].astype(np.float32), verbose=0)
    started = time.perf_counter()
    for index in range(args.naive):
        model.predict(images[index:index + 1].astype(np.float32), verbose=0)
    rows.append(["keras model.predict, one image per call", 1, args.naive,
                 f"{args.naive / (time.perf_counter() - started):,.0f}"])
    table(f"Classifier {version.version} ({version.card.get('parameters', '?')} parameters), images/s",
          ["runtime", "batch", "images", "images/s"], rows)
    table("Start-up in a fresh process: import the runtime, load the classifier, classify one image",
          ["runtime", "seconds"], [[name, f"{startup_seconds(version, name):.2f}"] for name in STARTUP])


if __name__ == "__main__":
    main()
