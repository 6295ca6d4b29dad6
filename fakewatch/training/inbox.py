"""The training inbox: labelled images collected into versioned training sets that extend the base data.

Sources: analysts' labels in the database (`fakewatch label`) and the folders ``INBOX/real`` and
``INBOX/fake`` that users fill. Each distinct content is copied once into a content-addressed store
(``TRAINSETS/objects/ab/abcdef....jpg``); a training-set version is a manifest listing every item of the
previous version plus the new ones, so nothing is copied twice and every version can be rebuilt.
When one content carries two labels, the newest label wins. The sets are shared by every domain;
``consumed.json`` records which version each domain's last refresh trained from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fakewatch import imaging
from fakewatch.config import Limits
from fakewatch.db.common import utcnow
from fakewatch.db.session import Database
from fakewatch.db.tables import Content, Image, Label
from fakewatch.errors import ImageError
from fakewatch.names import to_fs
from fakewatch.training.dataset import LABELS

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
CONSUMED_FILE = "consumed.json"  # domain -> the training-set version its last refresh trained from
LEGACY_DOMAIN = "thumbnail"  # the only domain refresh retrained before it worked per domain


@dataclass(frozen=True)
class Item:
    sha256: str
    label: str  # "real" or "fake"
    source: str  # where it came from: "analyst:<author>" or "inbox"
    suffix: str  # file extension, kept so the materialised file looks like an image


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _regular_bytes(path: Path, roots: tuple[str, ...], max_file_bytes: int) -> bytes | None:
    """The bytes of a regular file whose links stay inside ``roots`` (empty: anywhere); None otherwise."""
    if roots and path.is_symlink() and not any(_inside(os.path.realpath(path), root) for root in roots):
        log.warning("inbox: %s is a link out of the inbox; not collected", path)
        return None
    try:
        return imaging.read_bytes(path, max_file_bytes)
    except ImageError as exc:
        log.warning("inbox: %s: %s; not collected", path, exc)
        return None


class TrainingSets:
    """Versioned training sets in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.refused: list[str] = []  # what the last collect refused to read from the inbox, and why

    def _private_folder(self, folder: Path) -> None:
        """Create ``folder`` (and the store's root) readable by the owner only: it holds analysts' evidence."""
        for each in (self.root, folder):
            each.mkdir(mode=0o700, parents=True, exist_ok=True)
            each.chmod(0o700)

    def versions(self) -> list[int]:
        return sorted(int(path.stem) for path in self.root.glob("*.json") if path.stem.isdigit())

    def manifest(self, version: int) -> dict[str, Any]:
        return json.loads((self.root / f"{version}.json").read_text(encoding="utf-8"))

    def latest_items(self) -> dict[str, Item]:
        versions = self.versions()
        if not versions:
            return {}
        return {entry["sha256"]: Item(**entry) for entry in self.manifest(versions[-1])["items"]}

    def object_bytes(self, item: Item) -> bytes:
        """The stored bytes of one item."""
        return (self.objects / item.sha256[:2] / f"{item.sha256}{item.suffix}").read_bytes()

    def consumed(self, domain: str) -> int | None:
        """The training-set version the last refresh of ``domain`` trained from (None: none yet)."""
        marker = self.root / CONSUMED_FILE
        if marker.is_file():
            value = json.loads(marker.read_text(encoding="utf-8")).get(domain)
            return None if value is None else int(value)
        versions = self.versions()  # sets made before refresh was per domain were made by thumbnail refreshes
        return versions[-1] if versions and domain == LEGACY_DOMAIN else None

    def mark_consumed(self, domain: str, version: int) -> None:
        """Record that ``domain``'s refresh trained from training-set ``version``."""
        marker = self.root / CONSUMED_FILE
        record: dict[str, int] = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        record[domain] = version
        self._private_folder(self.root)
        temporary = marker.with_suffix(".tmp")
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(marker)

    def _store(self, data: bytes, digest: str, suffix: str) -> None:
        """Write the exact bytes that were hashed (never re-read from a path someone can swap)."""
        target = self.objects / digest[:2] / f"{digest}{suffix}"
        if not target.exists():
            self._private_folder(self.objects)
            self._private_folder(target.parent)
            temporary = target.with_suffix(".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            temporary.replace(target)

    def collect(self, database: Database, inbox: Path, limits: Limits, follow_outside_links: bool = False
                ) -> dict[str, tuple[Item, bytes]]:
        """Labelled images not yet in the latest set (or relabelled since): sha256 -> (item, bytes).

        Inbox files are read only when they are regular files inside the inbox (links out of it are
        skipped unless ``follow_outside_links``). A label folder that is a symlink, or a folder on the way
        that leads out of the inbox, is never read; each refusal is logged and kept in :attr:`refused`.
        An analyst's label is collected only with the very
        content it was made for: a file now holding other bytes under the labelled name is passed over."""
        known = self.latest_items()
        found: dict[str, tuple[Item, bytes]] = {}
        home = os.path.realpath(inbox)
        roots = () if follow_outside_links else (home,)
        self.refused = []
        for label in LABELS:
            folder = self._label_folder(inbox, label)
            if folder is not None:
                for path in sorted(folder.rglob("*")):
                    if path.name.startswith(".") or path.is_dir():
                        continue
                    if not _inside(os.path.realpath(path.parent), home):
                        self._refuse(f"{path.parent} leads out of the inbox through a symlink; "
                                     f"{path.name} not collected")
                        continue
                    data = _regular_bytes(path, roots, limits.max_file_bytes)
                    if data is not None:
                        digest = hashlib.sha256(data).hexdigest()
                        found[digest] = (Item(digest, label, "inbox", path.suffix.lower()), data)
        with database.session() as session:
            rows = session.execute(select(Label.label, Label.author, Content.sha256, Image.path)
                                   .join(Content, Content.id == Label.content_id)
                                   .join(Image, Image.content_id == Label.content_id)
                                   .where(Image.deleted_at.is_(None)).order_by(Label.id, Image.id))
            for label, author, wanted, image_path in rows:
                if wanted in found and found[wanted][0].source == f"analyst:{author}" \
                        and found[wanted][0].label == label:
                    continue  # already read from another path with this content
                data = _regular_bytes(Path(to_fs(image_path)), (), limits.max_file_bytes)
                if data is not None and hashlib.sha256(data).hexdigest() == wanted:
                    found[wanted] = (Item(wanted, label, f"analyst:{author}", Path(image_path).suffix.lower()), data)
        return {digest: (item, data) for digest, (item, data) in found.items()
                if digest not in known or known[digest].label != item.label}

    def _label_folder(self, inbox: Path, label: str) -> Path | None:
        """``INBOX/label`` when it is a real folder; a symlink in its place is refused, wherever it leads."""
        folder = inbox / label
        if folder.is_symlink():
            self._refuse(f"{folder} is a symlink (to {os.path.realpath(folder)}), not a folder; label folders "
                         f"must be real folders inside the inbox, so nothing under it was collected")
            return None
        return folder if folder.is_dir() else None

    def _refuse(self, message: str) -> None:
        """Log a refused inbox entry and keep it for the next manifest (``refused``)."""
        log.warning("inbox: %s", message)
        self.refused.append(message)

    def publish(self, new: dict[str, tuple[Item, bytes]]) -> int:
        """Store the new items and write the next version's manifest; returns its number."""
        items = self.latest_items()
        legacy = self.consumed(LEGACY_DOMAIN)
        if legacy is not None and not (self.root / CONSUMED_FILE).is_file():
            self.mark_consumed(LEGACY_DOMAIN, legacy)  # keep what a store from before per-domain refresh meant
        for digest, (item, data) in new.items():
            self._store(data, digest, item.suffix)
            items[digest] = item
        versions = self.versions()
        version = (versions[-1] + 1) if versions else 1
        manifest = {"format_version": MANIFEST_FORMAT, "version": version, "parent": versions[-1] if versions else None,
                    "created_at": utcnow().isoformat(timespec="seconds"), "added": sorted(new),
                    "refused": list(self.refused),
                    "items": [asdict(items[digest]) for digest in sorted(items)]}
        self._private_folder(self.root)
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
