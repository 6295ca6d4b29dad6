"""What one training run is asked to do, checked before any image is decoded or TensorFlow imported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fakewatch.config import Limits
from fakewatch.errors import ConfigError
from fakewatch.registry import ClassifierVersion

ARCHITECTURES = ("cnn", "resnet")
STEMS = ("patch", "full")
LARGE_INPUT = 224  # from this input size up, --arch resnet means keras.applications.ResNet50


def parse_blocks(blocks: int | str | tuple[int, ...]) -> tuple[int, int, int]:
    """Residual blocks per stage: one number for all three stages, or three comma-separated numbers."""
    if isinstance(blocks, int):
        counts: tuple[int, ...] = (blocks,) * 3
    elif isinstance(blocks, str):
        try:
            counts = tuple(int(part) for part in blocks.split(","))
        except ValueError:
            raise ConfigError(f"--blocks must be a number or three comma-separated numbers, not {blocks!r}") from None
        counts = counts * 3 if len(counts) == 1 else counts
    else:
        counts = tuple(blocks)
    if len(counts) != 3 or min(counts) < 1:
        raise ConfigError(f"--blocks must be one number or three, each at least 1; got {blocks!r}")
    return counts[0], counts[1], counts[2]


@dataclass(frozen=True)
class TrainOptions:
    """Every choice of a training run; invalid combinations raise :class:`ConfigError` on construction."""

    data_dir: str
    limits: Limits  # the same file-size and pixel limits as scanning
    extra_dirs: tuple[str, ...] = ()  # more real/ + fake/ folders that extend data_dir
    arch: str = "resnet"
    input_size: int = 32
    epochs: int = 18
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 5
    weights: str | None = None
    width: int = 32
    blocks: str = "2,1,1"  # per stage, or one number for all
    stem: str = "patch"
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    seed: int = 1337
    uncertain_margin: float = 0.1
    description: str = ""
    command: str = ""
    parent: ClassifierVersion | None = None  # fine-tune from this version instead of a fresh network
    verbose: int = 1

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if self.stem not in STEMS:
            raise ConfigError(f"unknown stem {self.stem!r}; choose one of {', '.join(STEMS)}")
        parse_blocks(self.blocks)
        if self.input_size < 16 or self.width < 1:
            raise ConfigError("--input-size must be at least 16 pixels and --width at least 1")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 0 or self.learning_rate <= 0:
            raise ConfigError("--epochs and --batch-size must be at least 1, --patience at least 0 and "
                              "--learning-rate positive")
        if not (0 < self.valid_fraction < 1 and 0 <= self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 1):
            raise ConfigError("--valid-fraction must be in (0, 1), --test-fraction in [0, 1), and together "
                              "below 1")
        self._check_weights()

    def _check_weights(self) -> None:
        if self.weights is None:
            return
        if not Path(self.weights).is_file():
            raise ConfigError(f"weights file {self.weights} does not exist")
        if self.arch != "resnet" or self.input_size < LARGE_INPUT:
            raise ConfigError(f"--weights applies to --arch resnet at --input-size {LARGE_INPUT} or more "
                              f"(ImageNet ResNet50)")
