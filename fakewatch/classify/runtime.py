"""Classify a batch of image ids: the one code path behind embedded scans, the watcher and Celery tasks.

Rows are re-read from the database (the truth), contents that already have a verdict from the active
classifier are skipped (so redelivered work writes nothing twice), each distinct content is decoded once
through :mod:`fakewatch.imaging`, and the classifier runs on the whole batch in one call. A file that
cannot be read is recorded on its row with its error kind; it never fails the batch.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from fakewatch import evidence, imaging
from fakewatch.actions import VerdictActions
from fakewatch.classifier import Classifier, decide
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
from fakewatch.registry import ClassifierVersion, Registry

log = logging.getLogger(__name__)
HOST = socket.gethostname()
PARALLEL_DECODE_BYTES = 64 * 1024


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
                 loader: Callable[[ClassifierVersion, int, str], Classifier] = load_classifier) -> None:
        self.settings = settings
        self.database = database
        self.registry = registry
        self._loader = loader
        self._classifier: Classifier | None = None
        self._reference: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")
        self.preloaded: dict[str, bytes] = {}  # path -> bytes intake already read (embedded mode)
        self.actions = VerdictActions(settings, database)  # quarantine, command, webhook: when configured
        self.c2pa_options = C2paOptions(settings.c2pa_trust_anchors, settings.c2pa_strict)

    @property
    def classifier(self) -> Classifier:
        """The classifier for the next batch, reloaded if the active version changed."""
        reference = self.registry.requested or self.registry.active_version()
        if self._classifier is None or reference != self._reference:
            previous = self._classifier.version if self._classifier else None
            self._classifier = self._loader(self.registry.find(reference), self.settings.batch_size,
                                            self.settings.runtime)
            self._reference = reference
            if previous:
                log.info("switched classifier %s -> %s", previous, self._classifier.version)
            else:
                log.info("classifier %s loaded", self._classifier.version)
        return self._classifier

    def _load(self, stored_path: str, spec: imaging.InputSpec,
              analyze: bool) -> tuple[np.ndarray | ImageError, str | None, list[Evidence] | None]:
        """The classifier input for one recorded file (or why there is none), the decoder's warnings, and
        (when ``analyze``) what the file's metadata says: all from one read of its bytes."""
        path = to_fs(stored_path)
        data = self.preloaded.get(path)
        notes: list[str] = []
        try:
            if data is None:
                data = imaging.read_bytes(path, self.settings.max_file_bytes)
            rgb = imaging.decode(data, self.settings.max_pixels, notes)
            found = evidence.analyze(data, imaging.sniff(data[:64]), self.c2pa_options, rgb) if analyze else None
            return imaging.resize_for(rgb, spec), "; ".join(notes) or None, found
        except ImageError as exc:
            return imaging.about(exc, path), None, None

    def classify_ids(self, ids: Sequence[int], force: bool = False) -> BatchOutcome:
        """Classify the pending images among ``ids``; ``force`` re-classifies done ones too."""
        outcome = BatchOutcome()
        for start in range(0, len(ids), self.settings.batch_size):
            chunk = list(ids[start:start + self.settings.batch_size])
            outcome.add(self._classify_chunk(chunk, force))
            if self._classifier is not None:
                self.actions.after(chunk, self._classifier.version)  # after the commit: verdicts are final
        return outcome

    def _classify_chunk(self, ids: Sequence[int], force: bool) -> BatchOutcome:
        classifier = self.classifier  # one version for the whole chunk
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
            done = set() if force else classified_contents(session, by_content, classifier.version)
            for content_id in done:
                set_status(session, [image.id for image in by_content.pop(content_id)], "done")
                outcome.already_done += 1
            self._classify_contents(session, by_content, classifier, force, outcome)
        return outcome

    def _classify_contents(self, session: object, by_content: dict[int, list[Any]], classifier: Classifier,
                           force: bool, outcome: BatchOutcome) -> None:
        started = time.perf_counter()
        content_ids = list(by_content)
        sizes = [by_content[cid][0].size or 0 for cid in content_ids]
        # Small files decode faster in this thread: pool hand-offs then cost more than the decoding, and
        # TensorFlow's idle threads compete with the pool. Large files are worth spreading over the cores.
        mapper = self._pool.map if sizes and sum(sizes) / len(sizes) > PARALLEL_DECODE_BYTES else map
        fresh = unanalyzed(session, content_ids)  # type: ignore[arg-type]
        results = list(mapper(lambda cid: self._load(by_content[cid][0].path, classifier.spec, cid in fresh),
                              content_ids))
        loaded = [array for array, _, _ in results]
        warned = {cid: note for cid, (_, note, _) in zip(content_ids, results) if note}
        found = {cid: items for cid, (_, _, items) in zip(content_ids, results) if items is not None}
        record_evidence(session, found)  # type: ignore[arg-type]
        proven = {cid: item.summary for cid, items in found.items() if (item := evidence.proof(items))}
        proven.update(proofs(session, [cid for cid in content_ids if cid not in found]))  # type: ignore[arg-type]
        good = [(cid, array) for cid, array in zip(content_ids, loaded) if not isinstance(array, ImageError)]
        for cid, error in zip(content_ids, loaded):
            if isinstance(error, ImageError):
                set_status(session, [image.id for image in by_content[cid]], "error",  # type: ignore[arg-type]
                                   error.kind, str(error))
                outcome.errors += len(by_content[cid])
        if not good:
            return
        p_fake = classifier.predict(np.stack([array for _, array in good]))
        elapsed_ms = (time.perf_counter() - started) * 1000 / len(good)
        now = utcnow()
        rows = []
        for (cid, _), probability in zip(good, p_fake):
            decision = decide(float(probability), classifier.threshold, self.settings.uncertain_margin)
            row = {"content_id": cid, "classifier": classifier.version, "label": decision.label,
                   "p_fake": decision.p_fake, "confidence": decision.confidence, "threshold": classifier.threshold,
                   "elapsed_ms": elapsed_ms, "host": HOST, "created_at": now, "reason": "classifier",
                   "reason_detail": None}
            if cid in proven:  # provenance outranks the classifier, whatever it says
                row.update(label="fake", confidence=1.0, reason="provenance", reason_detail=proven[cid][:1000])
            rows.append(row)
        write_verdicts(session, rows, replace=force)  # type: ignore[arg-type]
        mark_classified(session, [cid for cid, _ in good], now)  # type: ignore[arg-type]
        done_ids = [image.id for cid, _ in good if cid not in warned for image in by_content[cid]]
        set_status(session, done_ids, "done")  # type: ignore[arg-type]
        for cid, note in warned.items():
            set_status(session, [image.id for image in by_content[cid]], "done", warnings=note)  # type: ignore[arg-type]
            done_ids += [image.id for image in by_content[cid]]
        outcome.classified += len(done_ids)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.actions.close()

