"""Classify a batch of image ids: the one code path behind embedded scans, the watcher and Celery tasks.

Rows are re-read from the database (the truth), contents that already have a verdict from a classifier in
use are skipped (so redelivered work writes nothing twice), and each distinct content is decoded once
through :mod:`fakewatch.imaging`. The decoded size routes each image to the active classifier whose domain
covers it (:mod:`fakewatch.classify.router`); the images of one classifier run in one call, so a call never
mixes two. What each verdict says is :func:`fakewatch.verdicts.judge`'s business; an image that no active
classifier covers is judged too, under the classifier ``none``. A file that cannot be read is recorded on
its row with its error kind; it never fails the batch.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from fakewatch import diagnostics, evidence, imaging, jpeg
from fakewatch.actions import VerdictActions
from fakewatch.classifiers.base import Classifier, Pending, start_prepared
from fakewatch.classifiers.lazy import LazyClassifier
from fakewatch.classifiers.loading import load as load_classifier
from fakewatch.classify.router import NO_CLASSIFIER, Router, Uncovered
from fakewatch.config import Settings
from fakewatch.db.common import Prepared, listed, utcnow
from fakewatch.db.evidence import proofs, unanalyzed
from fakewatch.db.evidence import record as record_evidence
from fakewatch.db.session import Database
from fakewatch.db.tables import Image
from fakewatch.db.verdicts import classified_contents, mark_classified, set_status, write_verdicts
from fakewatch.errors import ImageError
from fakewatch.evidence import Evidence
from fakewatch.evidence.c2pa import C2paOptions
from fakewatch.names import to_fs
from fakewatch.registry import ClassifierVersion, Domain, Registry
from fakewatch.verdicts import Score, judge

log = logging.getLogger(__name__)
HOST = socket.gethostname()
PARALLEL_DECODE_BYTES = 64 * 1024
PREDICT_SLICE_PIXELS = 96 * 224 * 224  # crops' pixels per classifier call while the pool goes on decoding


_CHUNK_IMAGES = Prepared(lambda dialect: select(Image.id, Image.content_id, Image.path, Image.size).where(
    listed(Image.id, "ids", dialect), listed(Image.status, "statuses", dialect), Image.deleted_at.is_(None)))


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


@dataclass
class Started:
    """One chunk between :meth:`Runtime.begin` and :meth:`Runtime.finish`: its rows by content, what
    decoding found, and the classifier calls still running."""

    ids: list[int]
    force: bool
    router: Router
    started: float  # perf_counter at the start: verdicts record the time per image
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    by_content: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    already: list[int] = field(default_factory=list)  # image ids whose content already had a verdict
    chosen: dict[str, LazyClassifier] = field(default_factory=dict)  # version -> classifier
    inferences: list[tuple[str, list[int], Pending]] = field(default_factory=list)
    uncovered: list[tuple[int, Uncovered]] = field(default_factory=list)
    failed: list[tuple[int, ImageError]] = field(default_factory=list)
    warned: dict[int, str] = field(default_factory=dict)  # content id -> the decoder's warnings
    found: dict[int, list[Evidence]] = field(default_factory=dict)  # content id -> fresh evidence
    values: int = 0  # crop values handed to the classifiers (what this chunk holds until inference ran)
    views: dict[int, np.ndarray] = field(default_factory=dict)  # content id -> a fused classifier's view logits


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
        self._loaded: dict[str, tuple[Domain, LazyClassifier]] = {}
        self._router: Router | None = None
        self._references: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")
        self._infer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")  # one call at a time
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
                loaded[reference] = (version.domain, LazyClassifier(version, partial(
                    self._loader, version, self.settings.batch_size, self.settings.runtime)))
            if self._references:
                log.info("switched classifiers %s -> %s", ", ".join(self._references), ", ".join(references))
            self._loaded, self._references = loaded, references
            self._router = Router(list(loaded.values()))
        return self._router

    @property
    def classifier(self) -> Classifier:
        """The first classifier in use (the only one when the ``classifier`` setting names a version)."""
        return self.router.routes[0][1].loaded

    def _load(self, stored_path: str, router: Router, analyze: bool, preloaded: Mapping[str, bytes],
              capture: bool = True,
              ) -> tuple[np.ndarray | ImageError | Uncovered, LazyClassifier | None, str | None, list[Evidence] | None]:
        """The crops for one recorded file and the classifier they go to (or why there are none), the
        decoder's warnings, and (when ``analyze``) what the file's metadata says: all from one read.
        ``capture`` False: the caller captures the decoder's messages (:func:`_captured_once`)."""
        path = to_fs(stored_path)
        data = preloaded.get(path)
        notes: list[str] = []
        try:
            if data is None:
                data = imaging.read_bytes(path, self.settings.max_file_bytes)
            kind = imaging.sniff(data[:64])
            layout = jpeg.layout(data) if kind == "jpeg" else None  # one walk for the checks and the metadata
            rgb = imaging.decode(data, self.settings.max_pixels, notes, capture, layout)
            found = evidence.analyze(data, kind, self.c2pa_options, rgb, layout) if analyze else None
            classifier = router.route(*rgb.shape[:2])
            if classifier is None:
                return Uncovered(*rgb.shape[:2]), None, "; ".join(notes) or None, found
            return imaging.prepare(rgb, classifier.spec), classifier, "; ".join(notes) or None, found
        except ImageError as exc:
            return exc, None, None, None  # recorded on the row that names the file: no path in the message

    def classify_ids(self, ids: Sequence[int], force: bool = False,
                     preloaded: Mapping[str, bytes] | None = None) -> BatchOutcome:
        """Classify the pending images among ``ids``; ``force`` re-classifies done ones too. ``preloaded``
        maps file paths to the bytes intake already read (embedded mode: each file is read once). Each chunk
        is read and written in one transaction."""
        outcome = BatchOutcome()
        for start in range(0, len(ids), self.settings.batch_size):
            chunk = list(ids[start:start + self.settings.batch_size])
            with self.database.session() as session, session.begin():
                started = self.begin(chunk, force, preloaded, session)
                outcome.add(self.finish(started, session))
            self.actions.after(chunk, started.router.versions + [NO_CLASSIFIER])  # after the commit
        return outcome

    def begin(self, ids: Sequence[int], force: bool = False, preloaded: Mapping[str, bytes] | None = None,
              session: Session | None = None) -> Started:
        """The first half of classifying one chunk of ids (at most ``batch_size``): read their rows, decode
        each distinct content once, read its evidence, and hand the crops to the classifiers. Inference runs
        on the classifier's own threads, so the caller may go on (record and decode the next chunk) before
        :meth:`finish` writes this one; the files' bytes are not needed after this returns. ``session``: read
        in the caller's transaction (else in a short one of its own)."""
        router = self.router  # one set of versions for the whole chunk
        started = Started(list(ids), force, router, time.perf_counter())
        with nullcontext(session) if session is not None else self.database.session() as reading:
            wanted = ("pending", "done", "error") if force else ("pending",)
            images = _CHUNK_IMAGES(reading, ids=ids, statuses=wanted).all()
            started.outcome.skipped = len(ids) - len(images)
            by_content = started.by_content
            for image in images:
                if image.content_id is not None:
                    by_content[image.content_id].append(image)
            done = set() if force else classified_contents(reading, by_content, router.versions)
            started.already = [image.id for content_id in done for image in by_content.pop(content_id)]
            started.outcome.already_done += len(done)
            fresh = unanalyzed(reading, list(by_content))
        self._decode(started, fresh, preloaded or {})
        return started

    def _decode(self, started: Started, fresh: set[int], preloaded: Mapping[str, bytes]) -> None:
        """Decode, route and analyse each content of ``started``; hand the crops to inference in slices."""
        by_content, router = started.by_content, started.router
        content_ids = list(by_content)
        sizes = [by_content[cid][0].size or 0 for cid in content_ids]
        # Small files decode faster in this thread: pool hand-offs then cost more than the decoding, and
        # the runtime's idle threads compete with the pool. Large files are worth spreading over the cores.
        def load(cid: int, capture: bool = True) -> Any:
            return self._load(by_content[cid][0].path, router, cid in fresh, preloaded, capture)

        loads: Iterable[Any]
        if sizes and sum(sizes) / len(sizes) > PARALLEL_DECODE_BYTES:
            loads = self._pool.map(load, content_ids)
        else:
            loads = _captured_once(load, content_ids)
        waiting: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
        waiting_pixels: dict[str, int] = defaultdict(int)

        def flush(version: str) -> None:  # one classifier per call, never mixed
            members, waiting[version], waiting_pixels[version] = waiting[version], [], 0
            classifier = started.chosen[version]
            started.inferences.append((version, [cid for cid, _ in members], start_prepared(
                classifier, [crops for _, crops in members], self._infer)))

        # Inference runs on its own thread while this one goes on decoding: large images are handed over
        # in slices of about PREDICT_SLICE_PIXELS, so the classifier starts before the chunk is decoded.
        for cid, (loaded, classifier, note, found) in zip(content_ids, loads):
            if note:
                started.warned[cid] = note
            if found is not None:
                started.found[cid] = found
            if isinstance(loaded, ImageError):
                started.failed.append((cid, loaded))
            elif isinstance(loaded, Uncovered):
                started.uncovered.append((cid, loaded))
            elif classifier is not None:
                version = classifier.version
                waiting[version].append((cid, loaded))
                waiting_pixels[version] += loaded.size
                started.values += loaded.size
                started.chosen[version] = classifier
                if waiting_pixels[version] >= PREDICT_SLICE_PIXELS:
                    flush(version)
        for version in list(waiting):
            if waiting[version]:
                flush(version)

    def finish(self, started: Started, session: Session | None = None) -> BatchOutcome:
        """The second half: wait for the chunk's inference, then write its verdicts, evidence and image
        states in one transaction (on SQLite the write lock is held only while they run), then run the
        verdict actions. ``session``: write in the caller's transaction; the caller commits, then runs the
        actions."""
        outcome = started.outcome
        scores: dict[str, dict[int, float]] = defaultdict(dict)
        for version, members, future in started.inferences:
            scores[version].update(zip(members, future.result()))
            views = future.views()
            if views is not None:
                started.views.update(zip(members, views))
        started.inferences.clear()
        if session is not None:
            self._write(session, started, scores)
            return outcome
        with self.database.session() as writing, writing.begin():
            self._write(writing, started, scores)
        self.actions.after(started.ids, started.router.versions + [NO_CLASSIFIER])  # after the commit
        return outcome

    def _write(self, session: Any, started: Started, scores: Mapping[str, Mapping[int, float]]) -> None:
        by_content, router, outcome = started.by_content, started.router, started.outcome
        content_ids = list(by_content)
        set_status(session, started.already, "done")
        for cid, error in started.failed:
            set_status(session, [image.id for image in by_content[cid]], "error", error.kind, str(error))
            outcome.errors += len(by_content[cid])
        found = started.found
        record_evidence(session, found)
        proven = {cid: item for cid, items in found.items() if (item := evidence.proof(items))}
        proven.update(proofs(session, [cid for cid in content_ids if cid not in found]))
        judged_count = sum(map(len, scores.values())) + len(started.uncovered)
        if not judged_count:
            return
        elapsed_ms = (time.perf_counter() - started.started) * 1000 / judged_count
        now = utcnow()
        margin = self.settings.uncertain_margin
        rows: list[dict[str, Any]] = []

        def row(cid: int, classifier: str, score: Score | None, uncovered: str | None = None) -> dict[str, Any]:
            judged = judge(score, margin, proven.get(cid), uncovered)
            return {"content_id": cid, "classifier": classifier, **judged.fields(), "elapsed_ms": elapsed_ms,
                    "host": HOST, "created_at": now}

        for version, members in scores.items():
            classifier = started.chosen[version]
            for cid, probability in members.items():
                rows.append(row(cid, version, Score(float(probability), classifier.threshold, classifier.views,
                                                    started.views.get(cid))))
        for cid, size in started.uncovered:
            rows.append(row(cid, NO_CLASSIFIER, None, router.explain(size.height, size.width)))
        write_verdicts(session, rows, replace=started.force)
        judged: list[int] = [int(row["content_id"]) for row in rows]
        warned = started.warned
        # one write per image row: its status and verdict time together
        done_ids = [image.id for cid in judged if cid not in warned for image in by_content[cid]]
        set_status(session, done_ids, "done", classified_at=now)
        for cid in judged:
            if cid in warned:
                set_status(session, [image.id for image in by_content[cid]], "done",
                           warnings=warned[cid], classified_at=now)
                done_ids += [image.id for image in by_content[cid]]
        mark_classified(session, judged, now)  # copies elsewhere
        outcome.classified += len(done_ids)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._infer.shutdown(wait=False)
        self.actions.close()


def _captured_once(load: Callable[[int, bool], Any], content_ids: list[int]) -> list[Any]:
    """``load`` for each content in this thread, with the decoder's messages captured once around them all
    (pointing descriptor 2 elsewhere costs more than decoding a thumbnail). The usual case: nothing was
    said. When something was, every file is loaded again with its own capture, so each message is recorded
    on the file that caused it."""
    said: list[str] = []
    with diagnostics.captured(said):
        loads = [load(cid, False) for cid in content_ids]
    if said:
        loads = [load(cid, True) for cid in content_ids]
    return loads
