"""Versioned classifier artifacts: publish, list, activate, resolve and validate.

A classifier version is a directory holding its weights (``classifier.keras``, or the file the card's
``weights_file`` names) and ``card.json`` (plus optional plots and ``metrics.json``). The card records the
version id, engine (``keras`` unless it says otherwise), architecture, input spec, card format version,
decision threshold, temperature, training data, metrics, creation time and parent version; loading checks
it against the weights. Versions live in the registry folder (``registry_dir``); the shipped default lives
inside the package. The active version is named in ``registry_dir/ACTIVE``; without that file the
shipped default is active.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fakewatch.config import Settings
from fakewatch.errors import ClassifierNotFound, IncompatibleClassifier
from fakewatch.imaging import InputSpec

CARD_FORMAT = 1
CARD_FILE = "card.json"
WEIGHTS_FILE = "classifier.keras"
ENGINES = ("keras", "pixel-hash")  # what runs a version; see fakewatch.classifier.load
ACTIVE_FILE = "ACTIVE"
GATE_FILE = "gate.json"  # a refresh candidate's promotion decision and comparison
BUILTIN_DIR = Path(__file__).parent / "builtin_classifiers"
REQUIRED = ("format_version", "version", "architecture", "input_spec", "threshold", "temperature",
            "training_data", "metrics", "created_at", "parent", "weights_sha256")


@dataclass(frozen=True)
class ClassifierVersion:
    """A validated card and the folder it came from."""

    path: Path
    card: dict[str, Any]
    builtin: bool = False

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def spec(self) -> InputSpec:
        return InputSpec.from_dict(self.card["input_spec"])

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"])

    @property
    def temperature(self) -> float:
        return float(self.card["temperature"])

    @property
    def engine(self) -> str:
        return str(self.card.get("engine", "keras"))

    @property
    def weights(self) -> Path:
        return self.path / weights_file(self.card)

    @property
    def export(self) -> dict[str, Any] | None:
        """The card's record of the network's ONNX export (file, sha256, largest |delta p_fake|), if any."""
        export = self.card.get("export")
        return export if isinstance(export, dict) else None

    def export_file(self) -> Path:
        """The export's path, checked: present and matching the sha256 in the card."""
        if self.export is None:
            raise IncompatibleClassifier(f"classifier {self.version} has no export; run "
                                         f"`fakewatch classifiers export {self.version}`")
        path = self.path / str(self.export.get("file", ""))
        if not path.is_file() or path.parent != self.path:
            raise IncompatibleClassifier(f"classifier {self.version}: export {path.name!r} is missing; run "
                                         f"`fakewatch classifiers export {self.version}`")
        if file_sha256(path) != self.export.get("sha256"):
            raise IncompatibleClassifier(f"classifier {self.version}: export {path.name} does not match the sha256 "
                                         f"in its card; re-export it with `fakewatch classifiers export "
                                         f"{self.version}`")
        return path

    @property
    def gate(self) -> dict[str, Any] | None:
        """The refresh gate's decision, when this version was a refresh candidate."""
        path = self.path / GATE_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_file(card: dict[str, Any]) -> str:
    """The name of a version's weights file inside its folder."""
    return str(card.get("weights_file", WEIGHTS_FILE))


def new_version_id(architecture: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{architecture}-{now.strftime('%Y%m%d-%H%M%S')}"


def validate_card(card: Any, where: Path) -> dict[str, Any]:
    """Check a card's shape; raise :class:`IncompatibleClassifier` saying what is wrong."""
    if not isinstance(card, dict):
        raise IncompatibleClassifier(f"{where}: card is not a JSON object")
    missing = [name for name in REQUIRED if name not in card]
    if missing:
        raise IncompatibleClassifier(f"{where}: card lacks {', '.join(missing)}; re-publish it with "
                                     f"`fakewatch train` or fix card.json")
    if card["format_version"] != CARD_FORMAT:
        raise IncompatibleClassifier(f"{where}: card format {card['format_version']!r} is not supported "
                                     f"(this fakewatch reads format {CARD_FORMAT}); upgrade fakewatch")
    try:
        spec = InputSpec.from_dict(card["input_spec"])
    except TypeError as exc:
        raise IncompatibleClassifier(f"{where}: input_spec is malformed: {exc}") from exc
    if spec.format_version != InputSpec().format_version or spec.color_order != "RGB" or spec.dtype != "uint8":
        raise IncompatibleClassifier(f"{where}: input spec {spec} differs from the one this fakewatch "
                                     f"produces (format {InputSpec().format_version}, RGB, uint8)")
    if card.get("engine", "keras") not in ENGINES:
        raise IncompatibleClassifier(f"{where}: engine {card['engine']!r} is not one of {', '.join(ENGINES)}; "
                                     f"upgrade fakewatch")
    if "/" in weights_file(card) or weights_file(card).startswith("."):
        raise IncompatibleClassifier(f"{where}: weights_file must be a plain file name in the version folder")
    if not 0.0 < float(card["threshold"]) < 1.0 or float(card["temperature"]) <= 0.0:
        raise IncompatibleClassifier(f"{where}: threshold must be in (0, 1) and temperature positive")
    return card


def read_version(path: Path, builtin: bool = False, check_weights: bool = True) -> ClassifierVersion:
    """Read and validate the classifier version in ``path``."""
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise IncompatibleClassifier(f"{path}: no {CARD_FILE}; a classifier directory needs its card")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IncompatibleClassifier(f"{card_path}: unreadable card: {exc}") from exc
    version = ClassifierVersion(path, validate_card(card, path), builtin)
    if check_weights:
        if not version.weights.is_file():
            raise IncompatibleClassifier(f"{path}: {version.weights.name} is missing")
        if file_sha256(version.weights) != card["weights_sha256"]:
            raise IncompatibleClassifier(f"{path}: {version.weights.name} does not match the sha256 in its card; "
                                         f"the files were changed or mixed up")
    return version


class Registry:
    """The classifier versions this installation knows."""

    def __init__(self, settings: Settings, builtin_dir: Path = BUILTIN_DIR) -> None:
        self.root = settings.registry_path
        self.builtin_dir = builtin_dir
        self.requested = settings.classifier

    def _dirs(self) -> list[tuple[Path, bool]]:
        found = []
        for base, builtin in ((self.builtin_dir, True), (self.root, False)):
            if base.is_dir():
                found += [(child, builtin) for child in sorted(base.iterdir()) if (child / CARD_FILE).is_file()]
        return found

    def versions(self) -> list[ClassifierVersion]:
        """All versions, oldest first (weights are not hashed here; loading does that)."""
        versions = [read_version(path, builtin, check_weights=False) for path, builtin in self._dirs()]
        return sorted(versions, key=lambda v: (str(v.card["created_at"]), v.version))

    def default_version(self) -> str:
        builtin = [v for v in self.versions() if v.builtin]
        if not builtin:
            raise ClassifierNotFound("no shipped classifier found in the package and none activated; "
                                     "train one with `fakewatch train` and activate it")
        return builtin[-1].version

    def active_version(self) -> str:
        marker = self.root / ACTIVE_FILE
        if marker.is_file():
            return marker.read_text(encoding="utf-8").strip()
        return self.default_version()

    def find(self, reference: str) -> ClassifierVersion:
        """A version id or a directory path -> validated version (weights hash checked)."""
        candidate = Path(reference).expanduser()
        if candidate.is_dir():
            return read_version(candidate)
        for path, builtin in self._dirs():
            if path.name == reference:
                return read_version(path, builtin)
        raise ClassifierNotFound(f"no classifier version or directory {reference!r}; "
                                 f"see `fakewatch classifiers list`")

    def resolve(self) -> ClassifierVersion:
        """The classifier commands should use: the ``classifier`` setting, else the active version."""
        return self.find(self.requested or self.active_version())

    def resolved_id(self) -> str:
        """The version id :meth:`resolve` would return, without reading or hashing any weights (cheap enough
        to ask before every batch)."""
        reference = self.requested or self.active_version()
        candidate = Path(reference).expanduser()
        if candidate.is_dir():
            return read_version(candidate, check_weights=False).version
        return reference

    def activate(self, reference: str) -> ClassifierVersion:
        version = self.find(reference)
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / ACTIVE_FILE
        temporary = marker.with_suffix(".tmp")
        temporary.write_text(version.version + "\n", encoding="utf-8")
        temporary.replace(marker)  # atomic: workers polling ACTIVE never read half a name
        return version

    def publish(self, staged: Path) -> ClassifierVersion:
        """Move a staged classifier directory (weights + card) into the registry under its version id."""
        staged_version = read_version(staged)
        target = self.root / staged_version.version
        if target.exists():
            raise IncompatibleClassifier(f"version {staged_version.version} already exists in {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(target))
        return read_version(target)


def write_card(directory: Path, card: dict[str, Any]) -> None:
    """Finish a card (weights hash, timestamps) and write it beside the weights."""
    card = dict(card)
    card.setdefault("format_version", CARD_FORMAT)
    card.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
    card["weights_sha256"] = file_sha256(directory / weights_file(card))
    validate_card(card, directory)
    (directory / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
