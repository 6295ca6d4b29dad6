"""Versioned classifier artifacts: publish, list, activate, resolve and validate.

A classifier version is a directory holding its weights (``classifier.keras``, or the file the card's
``weights_file`` names) and ``card.json`` (plus optional plots and ``metrics.json``). The card records the
version id, engine (``keras`` unless it says otherwise), architecture, input spec, card format version,
decision threshold, temperature, training data, metrics, creation time and parent version; loading checks
it against the weights. Versions live in the registry folder (``registry_dir``); the shipped defaults live
inside the package.

Every version declares the images it is for, its **domain** (``thumbnail``: up to 64 px on the longer
side; ``photo``: 128 px and up on the shorter side; ``any``: every size). One version per domain is active
at a time, so several classifiers can be active at once and each image goes to the one whose domain covers
it. ``registry_dir/ACTIVE`` holds the activated version per domain as a JSON object (an older file holding
one plain version id still works); a domain nobody activated uses the newest shipped version for it.
Activating an ``any`` version makes it the only active classifier.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fakewatch.config import Settings
from fakewatch.errors import ClassifierNotFound, IncompatibleClassifier
from fakewatch.imaging import InputSpec

CARD_FORMAT = 1
CARD_FILE = "card.json"
WEIGHTS_FILE = "classifier.keras"
ENGINES = ("keras", "pixel-hash")  # what runs a version; see fakewatch.classifiers.loading
CATCH_ALL = "any"
T = TypeVar("T")
ACTIVE_FILE = "ACTIVE"
GATE_FILE = "gate.json"  # a refresh candidate's promotion decision and comparison
BUILTIN_DIR = Path(__file__).parent / "builtin_classifiers"
REQUIRED = ("format_version", "version", "architecture", "input_spec", "threshold", "temperature",
            "training_data", "metrics", "created_at", "parent", "weights_sha256")


@dataclass(frozen=True)
class Domain:
    """Which images a classifier is for, by their decoded size in pixels."""

    name: str
    min_side: int = 1  # the shorter side must be at least this
    max_side: int | None = None  # the longer side must be at most this (None: no limit)
    description: str = ""

    def covers(self, height: int, width: int) -> bool:
        return min(height, width) >= self.min_side and (self.max_side is None or max(height, width) <= self.max_side)

    def span(self) -> float:
        """How wide the domain is: a narrower one wins where two active domains both cover an image."""
        return (self.max_side or float("inf")) - self.min_side

    def describe(self) -> str:
        upper = f"up to {self.max_side} px on the longer side" if self.max_side else ""
        lower = f"{self.min_side} px and up on the shorter side" if self.min_side > 1 else ""
        return f"{self.name}: {upper or lower or 'every size'}"

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Domain:
        declared = card.get("domain")
        if isinstance(declared, dict):
            return cls(str(declared["name"]), int(declared.get("min_side") or 1),
                       None if declared.get("max_side") is None else int(declared["max_side"]),
                       str(declared.get("description", "")))
        # cards written before domains: a small whole-frame classifier is a thumbnail one, the rest take all
        size = int(card.get("input_spec", {}).get("size", 0))
        if card.get("engine", "keras") == "keras" and 0 < size <= THUMBNAIL_MAX:
            return THUMBNAIL
        return cls(CATCH_ALL, description="every size")


def narrowest(routes: Iterable[tuple[Domain, T]], height: int, width: int) -> T | None:
    """What goes with the narrowest domain covering a ``height`` x ``width`` image (None: none covers it)."""
    covering = [(domain.span(), index, item) for index, (domain, item) in enumerate(routes)
                if domain.covers(height, width)]
    return min(covering, key=lambda entry: entry[:2])[2] if covering else None


THUMBNAIL_MAX = 64
THUMBNAIL = Domain("thumbnail", 1, THUMBNAIL_MAX, "CIFAR-like thumbnails up to 64 px on the longer side")


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
    def domain(self) -> Domain:
        return Domain.from_card(self.card)

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
        if verified_sha256(path) != self.export.get("sha256"):
            raise IncompatibleClassifier(f"classifier {self.version}: export {path.name} does not match the sha256 "
                                         f"in its card; re-export it with `fakewatch classifiers export "
                                         f"{self.version}`")
        return path

    def check_weights(self) -> None:
        """The weights file is present and matches the sha256 in the card."""
        if not self.weights.is_file():
            raise IncompatibleClassifier(f"{self.path}: {self.weights.name} is missing")
        if verified_sha256(self.weights) != self.card["weights_sha256"]:
            raise IncompatibleClassifier(f"{self.path}: {self.weights.name} does not match the sha256 in its card; "
                                         f"the files were changed or mixed up")

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


_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}  # (path, device, inode, size, mtime) -> sha256


def verified_sha256(path: Path) -> str:
    """:func:`file_sha256`, computed once per process for a file that has not changed since (same inode,
    size and modification time): a version resolved, then loaded, hashes each of its files once."""
    status = path.stat()
    key = (str(path.resolve()), status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


def weights_file(card: dict[str, Any]) -> str:
    """The name of a version's weights file inside its folder."""
    return str(card.get("weights_file", WEIGHTS_FILE))


def summary_metrics(card: dict[str, Any]) -> dict[str, float]:
    """The headline test figures of a card: ``clean`` for whole-frame classifiers, the held-out groups'
    totals (balanced accuracy) for the photo classifier. `classifiers list` and the console show these."""
    metrics = card.get("metrics", {})
    if "clean" in metrics:
        return dict(metrics["clean"])
    totals = dict(metrics.get("test", {}).get("totals", {}))
    if "balanced_accuracy" in totals:
        totals["accuracy"] = totals["balanced_accuracy"]
    return totals


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
        version.check_weights()
    return version


class Registry:
    """The classifier versions this installation knows."""

    def __init__(self, settings: Settings, builtin_dir: Path = BUILTIN_DIR) -> None:
        self.root = settings.registry_path
        self.builtin_dir = builtin_dir
        self.requested = settings.classifier
        self.runtime = settings.runtime
        self._defaults: dict[str, str] | None = None

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

    def _builtin_defaults(self) -> dict[str, str]:
        """The newest shipped version of each domain (read once: the package's folder does not change)."""
        if self._defaults is None:
            shipped = [read_version(path, True, check_weights=False) for path, builtin in self._dirs() if builtin]
            self._defaults = {}
            for version in sorted(shipped, key=lambda v: (str(v.card["created_at"]), v.version)):
                self._defaults[version.domain.name] = version.version
        return self._defaults

    def _stored(self) -> dict[str, str]:
        """What ``ACTIVE`` says: domain -> version id (an older plain-id file counts for its version's domain)."""
        marker = self.root / ACTIVE_FILE
        if not marker.is_file():
            return {}
        text = marker.read_text(encoding="utf-8").strip()
        if text.startswith("{"):
            try:
                stored = json.loads(text)
            except json.JSONDecodeError as exc:
                raise IncompatibleClassifier(f"{marker}: unreadable ({exc}); activate a classifier again") from exc
            return {str(domain): str(version) for domain, version in stored.items()}
        return {self._domain_of(text): text} if text else {}

    def _domain_of(self, reference: str) -> str:
        for path, builtin in self._dirs():
            if path.name == reference:
                return read_version(path, builtin, check_weights=False).domain.name
        return CATCH_ALL  # an id that is gone: resolving it will say so

    def active_versions(self) -> dict[str, str]:
        """Domain -> the version id active for it (activated, else the newest shipped one)."""
        stored = self._stored()
        if CATCH_ALL in stored:
            return {CATCH_ALL: stored[CATCH_ALL]}
        active = {**self._builtin_defaults(), **stored}
        if not active:
            raise ClassifierNotFound("no shipped classifier found in the package and none activated; "
                                     "train one with `fakewatch train` and activate it")
        return active

    def references_in_use(self) -> list[str]:
        """What scanning uses now, as :meth:`find` takes it: the ``classifier`` setting (a version id or a
        folder) alone, else every active version id."""
        if self.requested:
            return [self.requested]
        return sorted(set(self.active_versions().values()))

    def in_use(self) -> list[str]:
        """The version ids scanning uses now (what verdicts are stored under)."""
        if self.requested:
            return [self.resolved_id()]
        return self.references_in_use()

    def active_version(self, domain: str | None = None) -> str:
        """The active version for ``domain``; without one, for the widest-reaching domain (photo first)."""
        active = self.active_versions()
        if domain is not None:
            if domain not in active:
                raise ClassifierNotFound(f"no classifier is active for the domain {domain!r}; active: "
                                         f"{', '.join(sorted(active))}")
            return active[domain]
        for preferred in (CATCH_ALL, "photo", THUMBNAIL.name):
            if preferred in active:
                return active[preferred]
        return active[sorted(active)[0]]

    def find(self, reference: str) -> ClassifierVersion:
        """A version id or a directory path -> validated version, with the file this installation's runtime
        runs checked against its card (:meth:`verify`)."""
        candidate = Path(reference).expanduser()
        if candidate.is_dir():
            return self.verify(read_version(candidate, check_weights=False))
        for path, builtin in self._dirs():
            if path.name == reference:
                return self.verify(read_version(path, builtin, check_weights=False))
        raise ClassifierNotFound(f"no classifier version or directory {reference!r}; "
                                 f"see `fakewatch classifiers list`")

    def verify(self, version: ClassifierVersion) -> ClassifierVersion:
        """Check the file the runtime loads for ``version`` against the sha256 in its card: its ONNX export
        under the ``lite`` runtime (where it has one), else its weights. Loading the other file checks it."""
        if self.runtime == "lite" and version.engine == "keras" and version.export is not None:
            version.export_file()
        else:
            version.check_weights()
        return version

    def resolve(self, domain: str | None = None) -> ClassifierVersion:
        """The classifier a command should use: the ``classifier`` setting, else the active one (for
        ``domain`` when given)."""
        return self.find(self.requested or self.active_version(domain))

    def resolve_all(self) -> list[ClassifierVersion]:
        """Every classifier scanning uses now, validated (weights hashed): fail fast before work starts."""
        return [self.find(reference) for reference in self.references_in_use()]

    def resolved_id(self) -> str:
        """The version id :meth:`resolve` would return, without reading or hashing any weights."""
        reference = self.requested or self.active_version()
        candidate = Path(reference).expanduser()
        if candidate.is_dir():
            return read_version(candidate, check_weights=False).version
        return reference

    def activate(self, reference: str) -> ClassifierVersion:
        """Make ``reference`` the active version for its domain (for every image, if its domain is ``any``)."""
        version = self.find(reference)
        domain = version.domain.name
        stored = {} if domain == CATCH_ALL else {d: v for d, v in self._stored().items() if d != CATCH_ALL}
        stored[domain] = version.version
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / ACTIVE_FILE
        temporary = marker.with_suffix(".tmp")
        temporary.write_text(json.dumps(stored, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(marker)  # atomic: workers polling ACTIVE never read half a file
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
