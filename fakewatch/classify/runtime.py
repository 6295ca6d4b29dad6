"""Classify a batch of image ids: the one code path behind embedded scans, the watcher and Celery tasks.

Rows are re-read from the database (the truth), contents that already have a verdict from a classifier in
use are skipped (so redelivered work writes nothing twice), and each distinct content is decoded once
through :mod:`fakewatch.imaging`. The decoded size routes each image to the active classifier whose domain
covers it (:class:`Router`); the images of one classifier run in one call, so a call never mixes two.
An image that no active classifier covers gets an ``uncertain`` verdict with the reason ``out_of_domain``
and the classifier ``none``. A file that cannot be read is recorded on its row with its error kind; it
never fails the batch.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import select

from fakewatch import evidence, imaging
from fakewatch.actions import VerdictActions
from fakewatch.classifier import Classifier, decide, predict_prepared
from fakewatch.classifier import load as load_classifier
from fakewatch.config import Settings
from fakewatch.db.common import among, utcnow
from fakewatch.db.evidence import proofs, unanalyzed
from fakewatch.db.evidence import record as record_evidence
from fakewatch.db.session import Database
from fakewatch.db.tables import Image
from fakewatch.db.verdicts import classified_contents, mark_classified, set_status, write_verdicts
from fakewatch.errors import ImageError
from fakewatch.evidence import Evidence
from fakewatch.evidence.c2pa import C2paOptions
from fakewatch.names import to_fs
from fakewatch.registry import ClassifierVersion, Domain, Registry, narrowest

log = logging.getLogger(__name__)
HOST = socket.gethostname()
PARALLEL_DECODE_BYTES = 64 * 1024
PREDICT_SLICE_PIXELS = 96 * 224 * 224  # crops' pixels per classifier call while the pool goes on decoding
NO_CLASSIFIER = "none"  # the classifier named on verdicts for images no active classifier covers


@dataclass(frozen=True)
class Uncovered:
    """A decoded image that no active classifier's domain covers."""

    height: int
    width: int


class LazyClassifier:
    """A classifier that loads on first use: a scan that meets only thumbnails never loads the photo
    classifier, and start-up pays for none of them."""

    def __init__(self, version: ClassifierVersion, load: Callable[[], Classifier]) -> None:
        self.version = version.version
        self._load = load
        self._loaded: Classifier | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Classifier:
        with self._lock:  # decoding threads may ask for the spec at once
            if self._loaded is None:
                self._loaded = self._load()
                log.info("classifier %s loaded", self.version)
            return self._loaded

    @property
    def spec(self) -> imaging.InputSpec:
        return self.loaded.spec

    @property
    def threshold(self) -> float:
        return self.loaded.threshold

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.loaded.predict(images)


class Router:
    """The classifiers in use and their domains: each image goes to the narrowest domain that covers it."""

    def __init__(self, routes: list[tuple[Domain, Classifier]]) -> None:
        self.routes = sorted(routes, key=lambda route: route[0].span())  # narrowest first

    def route(self, height: int, width: int) -> Classifier | None:
        return narrowest(self.routes, height, width)

    @property
    def versions(self) -> list[str]:
        return [classifier.version for _, classifier in self.routes]

    def explain(self, height: int, width: int) -> str:
        domains = "; ".join(domain.describe() for domain, _ in self.routes)
        return f"{width}x{height} px: no active classifier covers images this size ({domains})"


@dataclass
class BatchOutcome:
    classified: int = 0  # images that got a new verdict
    already_done: int = 0  # images whose content already had a verdict from this classifier
    errors: int = 0
    skipped: int = 0  # rows that were gone, deleted or not pending

    def add(self, other: BatchOutcome) -> None:
        self.classified += other.classified
        self.already_done += other.already_done
        self.errors += other.errors
        self.skipped += other.skipped


class Runtime:
    """Holds a database and a classifier for classifying batches of ids.

    The classifier is loaded lazily and reused. Before each batch the runtime asks which version should
    be in use (``classifier`` setting, else the registry's active version) and switches when that changed,
    so a promotion or rollback takes effect without a restart; one batch never mixes two versions.
    """

    def __init__(self, settings: Settings, database: Database, registry: Registry,
                 loader: Callable[[ClassifierVersion, int, str], Classifier] | None = None) -> None:
        self.settings = settings
        self.database = database
        self.registry = registry
        self._loader = loader or partial(load_classifier, threads=settings.runtime_threads)
        self._loaded: dict[str, tuple[Domain, Classifier]] = {}
        self._router: Router | None = None
        self._references: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")
        self.actions = VerdictActions(settings, database)  # quarantine, command, webhook: when configured
        self.c2pa_options = C2paOptions(settings.c2pa_trust_anchors, settings.c2pa_strict)

    @property
    def router(self) -> Router:
        """The classifiers for the next batch, reloaded where the active versions changed."""
        references = self.registry.references_in_use()
        if self._router is None or references != self._references:
            loaded = {}
            for reference in references:
                if reference in self._loaded:
                    loaded[reference] = self._loaded[reference]
                    continue
                version = self.registry.find(reference)
                loaded[reference] = (version.domain, LazyClassifier(version, partial(  # type: ignore[assignment]
                    self._loader, version, self.settings.batch_size, self.settings.runtime)))
            if self._references:
                log.info("switched classifiers %s -> %s", ", ".join(self._references), ", ".join(references))
            self._loaded, self._references = loaded, references
            self._router = Router(list(loaded.values()))
        return self._router

    @property
    def classifier(self) -> Classifier:
        """The first classifier in use (the only one when the ``classifier`` setting names a version)."""
        return self.router.routes[0][1].loaded  # type: ignore[attr-defined, no-any-return]

    def _load(self, stored_path: str, router: Router, analyze: bool, preloaded: Mapping[str, bytes],
              ) -> tuple[np.ndarray | ImageError | Uncovered, Classifier | None, str | None, list[Evidence] | None]:
        """The crops for one recorded file and the classifier they go to (or why there are none), the
        decoder's warnings, and (when ``analyze``) what the file's metadata says: all from one read."""
        path = to_fs(stored_path)
        data = preloaded.get(path)
        notes: list[str] = []
        try:
            if data is None:
                data = imaging.read_bytes(path, self.settings.max_file_bytes)
            rgb = imaging.decode(data, self.settings.max_pixels, notes)
            found = evidence.analyze(data, imaging.sniff(data[:64]), self.c2pa_options, rgb) if analyze else None
            classifier = router.route(*rgb.shape[:2])
            if classifier is None:
                return Uncovered(*rgb.shape[:2]), None, "; ".join(notes) or None, found
            return imaging.prepare(rgb, classifier.spec), classifier, "; ".join(notes) or None, found
        except ImageError as exc:
            return imaging.about(exc, path), None, None, None

    def classify_ids(self, ids: Sequence[int], force: bool = False,
                     preloaded: Mapping[str, bytes] | None = None) -> BatchOutcome:
        """Classify the pending images among ``ids``; ``force`` re-classifies done ones too. ``preloaded``
        maps file paths to the bytes intake already read (embedded mode: each file is read once)."""
        outcome = BatchOutcome()
        for start in range(0, len(ids), self.settings.batch_size):
            chunk = list(ids[start:start + self.settings.batch_size])
            outcome.add(self._classify_chunk(chunk, force, preloaded or {}))
            if self._router is not None:  # after the commit: verdicts are final
                self.actions.after(chunk, self._router.versions + [NO_CLASSIFIER])
        return outcome

    def _classify_chunk(self, ids: Sequence[int], force: bool, preloaded: Mapping[str, bytes]) -> BatchOutcome:
        """One chunk in one transaction. Its writes all come after decoding and inference, so on SQLite the
        write lock is held only while they run, not while the classifier does."""
        router = self.router  # one set of versions for the whole chunk
        outcome = BatchOutcome()
        with self.database.session() as session, session.begin():
            wanted = ("pending", "done", "error") if force else ("pending",)
            images = session.execute(select(Image.id, Image.content_id, Image.path, Image.size).where(
                among(session, Image.id, ids), Image.status.in_(wanted), Image.deleted_at.is_(None))).all()
            outcome.skipped = len(ids) - len(images)
            by_content: dict[int, list[Any]] = defaultdict(list)
            for image in images:
                if image.content_id is not None:
                    by_content[image.content_id].append(image)
            done = set() if force else classified_contents(session, by_content, router.versions)
            already = [image.id for content_id in done for image in by_content.pop(content_id)]
            outcome.already_done += len(done)
            self._classify_contents(session, by_content, router, force, outcome, preloaded)
            set_status(session, already, "done")
        return outcome

    def _classify_contents(self, session: object, by_content: dict[int, list[Any]], router: Router,
                           force: bool, outcome: BatchOutcome, preloaded: Mapping[str, bytes]) -> None:
        started = time.perf_counter()
        content_ids = list(by_content)
        sizes = [by_content[cid][0].size or 0 for cid in content_ids]
        # Small files decode faster in this thread: pool hand-offs then cost more than the decoding, and
        # the runtime's idle threads compete with the pool. Large files are worth spreading over the cores.
        mapper = self._pool.map if sizes and sum(sizes) / len(sizes) > PARALLEL_DECODE_BYTES else map
        fresh = unanalyzed(session, content_ids)  # type: ignore[arg-type]
        loads = mapper(lambda cid: self._load(by_content[cid][0].path, router, cid in fresh, preloaded), content_ids)
        groups: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
        chosen: dict[str, Classifier] = {}
        waiting: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
        waiting_pixels: dict[str, int] = defaultdict(int)
        scores: dict[int, float] = {}

        def flush(version: str) -> None:  # one classifier per call, never mixed
            members, waiting[version], waiting_pixels[version] = waiting[version], [], 0
            scores.update(zip([cid for cid, _ in members],
                              predict_prepared(chosen[version], [crops for _, crops in members])))

        results = []
        uncovered = []
        failed: list[tuple[int, ImageError]] = []
        # The pool keeps decoding while this thread runs the classifier on what is ready: large images
        # are classified in slices of about PREDICT_SLICE_PIXELS, overlapping decoding with inference.
        for cid, result in zip(content_ids, loads):
            results.append(result)
            loaded, classifier = result[0], result[1]
            if isinstance(loaded, ImageError):
                failed.append((cid, loaded))
            elif isinstance(loaded, Uncovered):
                uncovered.append((cid, loaded))
            elif classifier is not None:
                version = classifier.version
                groups[version].append((cid, loaded))
                waiting[version].append((cid, loaded))
                waiting_pixels[version] += loaded.size
                chosen[version] = classifier
                if waiting_pixels[version] >= PREDICT_SLICE_PIXELS:
                    flush(version)
        for version in list(waiting):
            if waiting[version]:
                flush(version)
        for cid, error in failed:
            set_status(session, [image.id for image in by_content[cid]], "error",  # type: ignore[arg-type]
                       error.kind, str(error))
            outcome.errors += len(by_content[cid])
        warned = {cid: note for cid, (_, _, note, _) in zip(content_ids, results) if note}
        found = {cid: items for cid, (_, _, _, items) in zip(content_ids, results) if items is not None}
        record_evidence(session, found)  # type: ignore[arg-type]
        proven = {cid: item.summary for cid, items in found.items() if (item := evidence.proof(items))}
        proven.update(proofs(session, [cid for cid in content_ids if cid not in found]))  # type: ignore[arg-type]
        if not groups and not uncovered:
            return
        predicted = {version: [scores[cid] for cid, _ in members] for version, members in groups.items()}
        elapsed_ms = (time.perf_counter() - started) * 1000 / (sum(map(len, groups.values())) + len(uncovered))
        now = utcnow()
        rows = []
        for version, members in groups.items():
            classifier = chosen[version]
            for (cid, _), probability in zip(members, predicted[version]):
                decision = decide(float(probability), classifier.threshold, self.settings.uncertain_margin)
                rows.append({"content_id": cid, "classifier": version, "label": decision.label,
                             "p_fake": decision.p_fake, "confidence": decision.confidence,
                             "threshold": classifier.threshold, "elapsed_ms": elapsed_ms, "host": HOST,
                             "created_at": now, "reason": "classifier", "reason_detail": None})
        for cid, size in uncovered:
            rows.append({"content_id": cid, "classifier": NO_CLASSIFIER, "label": "uncertain", "p_fake": 0.5,
                         "confidence": 0.0, "threshold": 0.5, "elapsed_ms": elapsed_ms, "host": HOST,
                         "created_at": now, "reason": "out_of_domain",
                         "reason_detail": router.explain(size.height, size.width)})
        for row in rows:
            if row["content_id"] in proven:  # provenance outranks the classifier, whatever it says
                row.update(label="fake", confidence=1.0, reason="provenance",
                           reason_detail=proven[row["content_id"]][:1000])
        write_verdicts(session, rows, replace=force)  # type: ignore[arg-type]
        judged: list[int] = [int(row["content_id"]) for row in rows]  # type: ignore[call-overload]
        # one write per image row: its status and verdict time together
        done_ids = [image.id for cid in judged if cid not in warned for image in by_content[cid]]
        set_status(session, done_ids, "done", classified_at=now)  # type: ignore[arg-type]
        for cid in judged:
            if cid in warned:
                set_status(session, [image.id for image in by_content[cid]], "done",  # type: ignore[arg-type]
                           warnings=warned[cid], classified_at=now)
                done_ids += [image.id for image in by_content[cid]]
        mark_classified(session, judged, now)  # type: ignore[arg-type]  # copies elsewhere
        outcome.classified += len(done_ids)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.actions.close()

