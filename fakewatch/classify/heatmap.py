"""The heatmap of a recorded image: read its file, pick the classifier of its latest verdict, explain.

The occlusion map itself and its drawing are :mod:`fakewatch.classifiers.explain`; this is the part that
reads the database and the registry, for `fakewatch explain` and the web console.
"""

from __future__ import annotations

from sqlalchemy import select

from fakewatch import imaging
from fakewatch.classifiers.base import Classifier
from fakewatch.classifiers.explain import Explanation, explain, render
from fakewatch.classifiers.loading import load
from fakewatch.config import Settings
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from fakewatch.errors import FakewatchError, ImageError
from fakewatch.names import to_fs
from fakewatch.registry import Registry, narrowest


def heatmap_for(settings: Settings, database: Database, image_id: int,
                loaded: dict[str, Classifier] | None = None) -> tuple[bytes, Explanation, str, str]:
    """The heatmap PNG of a recorded image for the classifier version of its latest verdict (the active one
    when it has none), its explanation, that version, and the file's path. ``loaded`` caches classifiers."""
    with database.session() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise FakewatchError(f"no image {image_id}")
        path = to_fs(image.path)
        version = session.scalar(select(Verdict.classifier).where(Verdict.content_id == image.content_id)
                                 .order_by(Verdict.created_at.desc(), Verdict.id.desc()).limit(1))
    try:
        rgb = imaging.decode(imaging.read_bytes(path, settings.max_file_bytes), settings.max_pixels)
    except ImageError as exc:
        raise FakewatchError(f"cannot explain image {image_id}: {exc}") from exc
    registry = Registry(settings)
    known = {item.version for item in registry.versions()}
    if version in known:
        chosen = registry.find(version)
    else:  # no verdict from a known classifier: the one in use whose domain covers the picture
        candidates = [registry.find(reference) for reference in registry.references_in_use()]
        found = narrowest([(item.domain, item) for item in candidates], *rgb.shape[:2])
        if found is None:
            raise FakewatchError(f"cannot explain image {image_id}: no active classifier covers "
                                 f"{rgb.shape[1]}x{rgb.shape[0]} px images")
        chosen = found
    version = chosen.version
    cache = loaded if loaded is not None else {}
    if version not in cache:
        cache[version] = load(chosen, settings.batch_size, settings.runtime)
    explanation = explain(cache[version], rgb)
    return render(rgb, explanation), explanation, version, path
