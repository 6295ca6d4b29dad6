"""The training inbox: labelled images collected into versioned training sets that extend the base data.

Sources: analysts' labels in the database (`fakewatch label`) and the folders ``INBOX/real`` and
``INBOX/fake`` that users fill. Each distinct content is copied once into a content-addressed store
(``TRAINSETS/objects/ab/abcdef....jpg``); a training-set version is a manifest listing every item of the
previous version plus the new ones, so nothing is copied twice and every version can be rebuilt.
When one content carries two labels, the newest label wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fakewatch.db.common import utcnow
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Label
from fakewatch.training.dataset import LABELS

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Item:
    sha256: str
    label: str  # "real" or "fake"
    source: str  # where it came from: "analyst:<author>" or "inbox"
    suffix: str  # file extension, kept so the materialised file looks like an image


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TrainingSets:
    """Versioned training sets in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"

    def versions(self) -> list[int]:
        return sorted(int(path.stem) for path in self.root.glob("*.json") if path.stem.isdigit())

    def manifest(self, version: int) -> dict[str, Any]:
        return json.loads((self.root / f"{version}.json").read_text(encoding="utf-8"))

    def latest_items(self) -> dict[str, Item]:
        versions = self.versions()
        if not versions:
            return {}
        return {entry["sha256"]: Item(**entry) for entry in self.manifest(versions[-1])["items"]}

    def _store(self, source: Path, digest: str, suffix: str) -> None:
        target = self.objects / digest[:2] / f"{digest}{suffix}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".tmp")
            shutil.copyfile(source, temporary)
            temporary.replace(target)

    def collect(self, database: Database, inbox: Path) -> dict[str, tuple[Item, Path]]:
        """Labelled images not yet in the latest set (or relabelled since): sha256 -> (item, file)."""
        known = self.latest_items()
        found: dict[str, tuple[Item, Path]] = {}
        for label in LABELS:
            folder = inbox / label
            if folder.is_dir():
                for path in sorted(folder.rglob("*")):
                    if path.is_file() and not path.name.startswith("."):
                        digest = _digest(path)
                        found[digest] = (Item(digest, label, "inbox", path.suffix.lower()), path)
        with database.session() as session:
            rows = session.execute(select(Label.label, Label.author, Image.path)
                                   .join(Image, Image.id == Label.image_id).order_by(Label.id))
            for label, author, image_path in rows:
                file = Path(image_path)
                if file.is_file():
                    digest = _digest(file)
                    found[digest] = (Item(digest, label, f"analyst:{author}", file.suffix.lower()), file)
        return {digest: (item, path) for digest, (item, path) in found.items()
                if digest not in known or known[digest].label != item.label}

    def publish(self, new: dict[str, tuple[Item, Path]]) -> int:
        """Store the new items and write the next version's manifest; returns its number."""
        items = self.latest_items()
        for digest, (item, path) in new.items():
            self._store(path, digest, item.suffix)
            items[digest] = item
        versions = self.versions()
        version = (versions[-1] + 1) if versions else 1
        manifest = {"format_version": MANIFEST_FORMAT, "version": version, "parent": versions[-1] if versions else None,
                    "created_at": utcnow().isoformat(timespec="seconds"), "added": sorted(new),
                    "items": [asdict(items[digest]) for digest in sorted(items)]}
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / f"{version}.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        return version

    def materialise(self, version: int, folder: Path, only: set[str] | None = None,
                    exclude: set[str] | frozenset[str] = frozenset()) -> Path:
        """A real/ + fake/ folder of hard links (copies across file systems) for one version."""
        if folder.exists():
            shutil.rmtree(folder)
        for label in LABELS:
            (folder / label).mkdir(parents=True)
        for entry in self.manifest(version)["items"]:
            if (only is not None and entry["sha256"] not in only) or entry["sha256"] in exclude:
                continue
            source = self.objects / entry["sha256"][:2] / f"{entry['sha256']}{entry['suffix']}"
            target = folder / entry["label"] / source.name
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        return folder
