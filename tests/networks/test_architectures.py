"""The networks themselves (TensorFlow): shapes, heads, stems, batch-norm folding."""

import numpy as np
import pytest

from fakewatch.imaging import InputSpec
from fakewatch.training import architectures

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("arch, size", [("cnn", 32), ("resnet", 32), ("resnet", 64)])
def test_networks_end_in_logit_and_probability(arch: str, size: int) -> None:
    model = architectures.build(arch, InputSpec(size=size), width=8)
    assert model.input_shape == (None, size, size, 3)
    assert model.get_layer("logit").output.shape[-1] == 1
    out = model(np.zeros((2, size, size, 3), np.float32)).numpy()
    assert out.shape == (2, 1) and np.all((out > 0) & (out < 1))


def test_large_inputs_use_resnet50_and_never_download(caplog: pytest.LogCaptureFixture) -> None:
    model = architectures.build("resnet", InputSpec(size=224))
    assert model.name == "resnet50"
    assert "from scratch" in caplog.text


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        architectures.build("vit", InputSpec())
    with pytest.raises(ValueError, match="224"):
        architectures.build("resnet", InputSpec(size=32), weights="/some/file.h5")
    with pytest.raises(ValueError, match="does not exist"):
        architectures.build("resnet", InputSpec(size=224), weights="/no/such/weights.h5")


@pytest.mark.parametrize("stem, first_stage_side", [("patch", 16), ("full", 32)])
def test_small_resnet_stems(stem: str, first_stage_side: int) -> None:
    model = architectures.build("resnet", InputSpec(size=32), width=8, blocks="2,1,1", stem=stem)
    assert model.name == f"resnet_{stem}_w8_b211"
    widths = [layer.output.shape for layer in model.layers if layer.__class__.__name__ == "Add"]
    assert len(widths) == 4  # 2 + 1 + 1 residual blocks
    assert widths[0][1:] == (first_stage_side, first_stage_side, 8)
    assert widths[-1][-1] == 32


def test_unknown_stem() -> None:
    with pytest.raises(ValueError, match="stem"):
        architectures.build("resnet", InputSpec(size=32), stem="pyramid")


def test_folding_batch_norms_keeps_the_outputs() -> None:
    import keras

    from fakewatch.classifiers.keras_runtime import fold_batch_norms

    model = architectures.build("resnet", InputSpec(size=32), width=8, blocks="2,1,1")
    rng = np.random.default_rng(3)
    for weight in model.weights:  # trained-looking statistics, far from the identity transform
        if any(name in weight.path for name in ("moving", "gamma", "beta")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
    folded = fold_batch_norms(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    images = rng.integers(0, 256, (16, 32, 32, 3)).astype(np.float32)

    def logits(network: keras.Model) -> np.ndarray:
        return keras.Model(network.inputs, network.get_layer("logit").output)(images, training=False).numpy()

    np.testing.assert_allclose(logits(folded), logits(model), rtol=1e-4, atol=1e-4)
    baseline = architectures.build("cnn", InputSpec(size=32))
    assert fold_batch_norms(baseline) is baseline  # nothing to fold
