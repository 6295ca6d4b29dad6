"""What the web console does, apart from HTTP: uploads, previews, listings, labels, classifiers, metrics.

One :class:`Console` per server process. It opens the mode the settings ask for (embedded: classify in
this process; distributed: record and queue for workers) and calls the same library code as the CLI, so a
label, a scan or an activation from the console is exactly the one the command would make.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakewatch import imaging
from fakewatch.config import Settings
from fakewatch.db.results import image_location, label_counts, record_by_id, results, rows_for_ids
from fakewatch.db.session import Database
from fakewatch.errors import FakewatchError, ImageError
from fakewatch.filters import ResultFilter
from fakewatch.names import to_fs
from fakewatch.registry import Registry, summary_metrics
from fakewatch.values import AnalystLabel, Status, choices, one_of

THUMBNAIL_SIDE = 256
PREVIEW_SIDE = 1600
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif", "gif": ".gif"}
SUFFIXES = {"jpeg": {".jpg", ".jpeg", ".jpe", ".jfif"}, "png": {".png"}, "webp": {".webp"}, "bmp": {".bmp", ".dib"},
            "tiff": {".tif", ".tiff"}, "gif": {".gif"}}
MAX_NAME = 100  # characters of an upload's stored name
_UNSAFE_IN_NAME = re.compile(r"[^\w.,+@() -]+")  # \w: letters and digits of any script, and _


class UploadRefused(FakewatchError):
    """An upload that is not an image fakewatch can read; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class NotFound(FakewatchError):
    pass


@dataclass
class Upload:
    name: str  # as the client sent it: shown, never used as a path
    data: bytes


def upload_name(name: str, kind: str) -> str:
    """The name an upload is stored under: the client's file name without its folders, with anything but
    letters, digits, spaces and ``.,+@()-_`` replaced by ``_``, at most 100 characters, ending in an
    extension of the type its bytes are (``notes.png`` holding a JPEG becomes ``notes.png.jpg``)."""
    base = unicodedata.normalize("NFC", re.split(r"[/\\]", name)[-1])
    base = _UNSAFE_IN_NAME.sub("_", base).strip(" .")
    stem, suffix = os.path.splitext(base)
    if suffix.lower() not in SUFFIXES.get(kind, set()):
        stem, suffix = base, EXTENSIONS.get(kind, ".img")
    stem = stem[: MAX_NAME - len(suffix)].rstrip(" .") or "upload"
    return stem + suffix


def _write_whole(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so that readers see the whole file or none (a private temporary name,
    flushed to disk, then renamed over it)."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    with open(partial, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)


class Console:
    def __init__(self, settings: Settings) -> None:
        from fakewatch.mode import open_mode

        self.settings = settings
        self.database = Database(settings.resolved_database_url)
        self.mode = open_mode(settings, self.database)
        self.registry = Registry(settings)
        self.intake_lock = threading.Lock()  # one intake (and in-process classifier) call at a time
        self.store_lock = threading.Lock()  # the same bytes uploaded twice at once are stored once
        self.author = getpass.getuser()
        self.explainers: dict[str, Any] = {}  # classifier version -> loaded classifier, for heatmaps

    def close(self) -> None:
        self.mode.close()

    # --- uploads --------------------------------------------------------------------------------------

    def check_upload(self, upload: Upload) -> str:
        """Validate ``upload`` as a file on disk would be, store it by content under its sanitised name; its
        stored path."""
        limits = self.settings.limits
        if not upload.data:
            raise UploadRefused(f"{upload.name}: empty file", 422, "empty")
        if len(upload.data) > limits.max_file_bytes:
            raise UploadRefused(f"{upload.name}: larger than max_file_bytes ({limits.max_file_bytes:,})", 413,
                                "too_large")
        kind = imaging.sniff(upload.data[:64])
        if kind is None:
            raise UploadRefused(f"{upload.name}: not a JPEG, PNG, WebP, BMP, TIFF or GIF image", 415, "unsupported")
        try:
            imaging.decode(upload.data, limits.max_pixels)
        except ImageError as exc:
            status = 413 if exc.kind == "too_large" else 422
            raise UploadRefused(f"{upload.name}: {exc}", status, exc.kind) from exc
        digest = hashlib.sha256(upload.data).hexdigest()
        with self.store_lock:
            return str(self._store(upload, digest, kind))

    def _store(self, upload: Upload, digest: str, kind: str) -> Path:
        """Where the upload's bytes are kept: ``uploads/ab/DIGEST/NAME``, named as they were first uploaded
        (later uploads of the same bytes find that file, so the same bytes are one image)."""
        folder = self.settings.uploads_path / digest[:2]
        earlier = folder / f"{digest}{EXTENSIONS.get(kind, '.img')}"  # before names were kept
        if earlier.exists():
            return earlier
        holder = folder / digest
        if holder.is_dir():
            kept = [entry for entry in holder.iterdir() if not entry.name.startswith(".")]
            if kept:
                return kept[0]
        holder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = holder / upload_name(upload.name, kind)
        _write_whole(target, upload.data)
        return target

    def scan(self, uploads: list[Upload]) -> list[dict[str, Any]]:
        """Store, record and classify (or queue) uploaded files; one JSON row or refusal per upload."""
        outcomes: list[dict[str, Any]] = []
        stored: list[tuple[int, str]] = []
        for index, upload in enumerate(uploads):
            try:
                stored.append((index, self.check_upload(upload)))
                outcomes.append({})
            except UploadRefused as exc:
                outcomes.append({"name": upload.name, "status": "refused", "error_kind": exc.kind,
                                 "error": str(exc), "http_status": exc.status})
        if stored:
            with self.intake_lock:
                recorded = self.mode.intake.process([path for _, path in stored])
            with self.database.session() as session:
                rows = {row["id"]: row for row in rows_for_ids(session, [item[0] for item in recorded.values()])}
            for index, path in stored:
                image_id = recorded[path][0] if path in recorded else None
                row = rows.get(image_id) if image_id is not None else None
                outcomes[index] = {**(row or {"path": path, "status": "pending"}), "name": uploads[index].name}
        return outcomes

    # --- reading ----------------------------------------------------------------------------------------

    def results(self, filters: ResultFilter) -> list[dict[str, Any]]:
        with self.database.session() as session:
            return list(results(session, filters))

    def stream(self, filters: ResultFilter) -> Iterator[dict[str, Any]]:
        with self.database.session() as session:
            yield from results(session, filters)

    def counts(self, filters: ResultFilter) -> dict[str, int]:
        with self.database.session() as session:
            return label_counts(session, filters)

    def image(self, image_id: int) -> dict[str, Any]:
        with self.database.session() as session:
            record = record_by_id(session, image_id)
        if record is None:
            raise NotFound(f"no image {image_id}")
        return record

    def ping(self) -> None:
        """Raises if the database cannot be reached."""
        self.database.ping()

    def _image_file(self, image_id: int) -> tuple[str, str]:
        with self.database.session() as session:
            found = image_location(session, image_id)
        if found is None:
            raise NotFound(f"no image {image_id}")
        return found[0], str(found[1])

    def picture(self, image_id: int, side: int) -> bytes:
        """The image as a JPEG no larger than ``side`` pixels a side, built once and cached by content."""
        path, content = self._image_file(image_id)
        cache = self.settings.web_cache_path / f"{side}"
        cached = cache / f"{content}-{hashlib.sha256(path.encode()).hexdigest()[:16]}.jpg"
        if cached.exists():
            return cached.read_bytes()
        try:
            rgb = imaging.decode(imaging.read_bytes(to_fs(path), self.settings.max_file_bytes),
                                 self.settings.max_pixels)
        except (ImageError, OSError) as exc:
            raise NotFound(f"image {image_id} cannot be shown: {exc}") from exc
        scale = side / max(rgb.shape[:2])
        if scale < 1:
            rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        data = imaging.encode_jpeg(np.ascontiguousarray(rgb), 88)
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_whole(cached, data)
        return data

    def heatmap(self, image_id: int) -> bytes:
        """Where the classifier looked: the occlusion heatmap PNG of `fakewatch explain`, drawn on request
        (the browser keeps it for an hour); the classifiers it needs stay loaded."""
        from fakewatch.classify.heatmap import heatmap_for

        try:
            return heatmap_for(self.settings, self.database, image_id, self.explainers)[0]
        except FakewatchError as exc:
            raise NotFound(str(exc)) from exc

    def add_label(self, image_id: int, label: str, note: str | None, author: str | None) -> dict[str, Any]:
        from fakewatch.db.labels import label_image

        if label not in choices(AnalystLabel):
            raise FakewatchError(f"label must be {one_of(AnalystLabel)}")
        with self.database.session() as session, session.begin():
            if not label_image(session, image_id, label, (author or self.author)[:255], note or None):
                raise NotFound(f"no image {image_id}")
        return self.image(image_id)

    # --- classifiers --------------------------------------------------------------------------------------

    def classifiers(self) -> list[dict[str, Any]]:
        active = set(self.registry.active_versions().values())
        listed = []
        for version in self.registry.versions():
            card = version.card
            gate = version.gate
            listed.append({
                "version": version.version, "active": version.version in active,
                "architecture": card.get("architecture"), "engine": version.engine,
                "domain": version.domain.describe(),
                "input_size": version.spec.size, "parent": card.get("parent"),
                "source": "shipped" if version.builtin else "registry",
                "status": "active" if version.version in active else (gate["status"] if gate else "available"),
                "gate": gate, "metrics": summary_metrics(card),
                "created_at": card.get("created_at"), "plots": self.plots(version.version),
            })
        return listed

    def plots(self, version: str) -> list[str]:
        folder = self.registry.find(version).path
        return sorted(entry.name for entry in folder.iterdir() if entry.suffix == ".png" and entry.is_file())

    def plot(self, version: str, name: str) -> bytes:
        if name not in self.plots(version):  # only files listed in the version's own folder
            raise NotFound(f"no plot {name!r} for {version}")
        return (self.registry.find(version).path / name).read_bytes()

    def activate(self, version: str) -> str:
        known = {item.version for item in self.registry.versions()}
        if version not in known:
            raise NotFound(f"no classifier version {version!r}")
        return self.registry.activate(version).version

    # --- status and metrics ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        from fakewatch.status import status

        return status(self.settings, self.database)

    def per_minute(self, minutes: int = 60) -> list[int]:
        """Verdicts written in each of the last ``minutes`` minutes, oldest first."""
        from fakewatch.db.throughput import verdicts_each_minute

        with self.database.session() as session:
            return verdicts_each_minute(session, minutes)

    def metrics(self) -> str:
        """Prometheus text exposition of the database's counts and the classify latency histogram."""
        from fakewatch.db.results import images_by_status, stats
        from fakewatch.db.throughput import latency

        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])

        with self.database.session() as session:
            by_status = images_by_status(session)
            numbers = stats(session)
            timing = latency(session, LATENCY_BUCKETS_MS)
        family("fakewatch_images", "gauge", "Images in the database by status (deleted files excluded).")
        for status_name in choices(Status):
            lines.append(f'fakewatch_images{{status="{status_name}"}} {by_status.get(status_name, 0)}')
        family("fakewatch_images_by_label", "gauge", "Images by their latest verdict's label.")
        for label, count in sorted(numbers["by_label"].items(), key=str):
            lines.append(f'fakewatch_images_by_label{{label="{label}"}} {count}')
        family("fakewatch_verdicts", "counter", "Verdicts written, by classifier version.")
        for version, count in sorted(numbers["verdicts_by_classifier"].items(), key=str):
            lines.append(f'fakewatch_verdicts_total{{classifier="{version}"}} {count}')
        family("fakewatch_queue_depth", "gauge", "Messages waiting per queue (distributed mode).")
        if not self.settings.embedded:
            from fakewatch.status import queue_depths

            for queue, depth in queue_depths(self.settings).items():
                if isinstance(depth, int):
                    lines.append(f'fakewatch_queue_depth{{queue="{queue}"}} {depth}')
        family("fakewatch_classify_latency_seconds", "histogram", "Classifier time per image, from the verdicts.")
        for bound, count in zip(LATENCY_BUCKETS_MS, timing.at_most, strict=True):
            lines.append(f'fakewatch_classify_latency_seconds_bucket{{le="{bound / 1000:g}"}} {count}')
        lines.append(f'fakewatch_classify_latency_seconds_bucket{{le="+Inf"}} {timing.count}')
        lines.append(f"fakewatch_classify_latency_seconds_sum {timing.sum_ms / 1000:.6f}")
        lines.append(f"fakewatch_classify_latency_seconds_count {timing.count}")
        return "\n".join(lines) + "\n"

