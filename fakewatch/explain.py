"""Where the classifier looked: an occlusion heatmap over the image, for any classifier and runtime.

The image goes through the same loading path as classification (:func:`fakewatch.imaging.decode` and
:func:`fakewatch.imaging.prepare`: a thumbnail classifier sees the whole picture at its input size, a crop
classifier its crops, of which the centre one is mapped here). A square patch of the
image's mean colour slides over that input; every position is one image of a single batched call. How
much ``p_fake`` drops when a region is hidden is that region's heat. The map is scaled back to the
picture and drawn over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fakewatch import imaging
from fakewatch.classifier import Classifier
from fakewatch.config import Settings
from fakewatch.db.session import Database
from fakewatch.errors import FakewatchError, ImageError

PATCH_FRACTION = 0.25  # patch side, as a share of the input side
STRIDE_FRACTION = 0.0625
MAX_SIDE = 1024  # the drawn heatmap's longest side


@dataclass(frozen=True)
class Explanation:
    p_fake: float
    heat: np.ndarray  # p_fake drop per pixel (negative: hiding it raised p_fake): input size x input size, or
    # for a crop classifier the (scaled-up if small) picture's size, zero outside the centre crop
    patch: int  # patch side in input pixels
    hottest: tuple[int, int]  # top-left corner (row, column) of the patch whose hiding lowers p_fake most
    coldest: tuple[int, int]


def occluded(array: np.ndarray, corner: tuple[int, int], patch: int) -> np.ndarray:
    """``array`` with a ``patch``-sided square at ``corner`` filled with the image's mean colour."""
    hidden = array.copy()
    row, column = corner
    hidden[row:row + patch, column:column + patch] = array.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    return hidden


def explain(classifier: Classifier, rgb: np.ndarray) -> Explanation:
    """The occlusion map of decoded ``rgb`` for ``classifier`` (for a crop classifier: over its centre crop,
    placed where that crop lies in the picture)."""
    array = imaging.prepare(rgb, classifier.spec)[0]
    size = array.shape[0]
    patch = max(1, round(size * PATCH_FRACTION))
    stride = max(1, round(size * STRIDE_FRACTION))
    corners = [(row, column) for row in range(0, size - patch + 1, stride)
               for column in range(0, size - patch + 1, stride)]
    batch = np.stack([array] + [occluded(array, corner, patch) for corner in corners])
    scores = classifier.predict(batch)
    base, drops = float(scores[0]), float(scores[0]) - scores[1:]
    heat = np.zeros((size, size), np.float64)
    cover = np.zeros((size, size), np.float64)
    for (row, column), drop in zip(corners, drops):
        heat[row:row + patch, column:column + patch] += drop
        cover[row:row + patch, column:column + patch] += 1
    heat /= np.maximum(cover, 1)
    order = np.argsort(drops)
    hottest, coldest = corners[int(order[-1])], corners[int(order[0])]
    if classifier.spec.crops == "tiles":
        grown = imaging.fit_min_side(rgb, size)
        top, left = imaging.tile_origins(grown.shape[0], grown.shape[1], size, 1)[0]
        placed = np.zeros(grown.shape[:2], np.float64)
        placed[top:top + size, left:left + size] = heat
        heat = placed
        hottest, coldest = (hottest[0] + top, hottest[1] + left), (coldest[0] + top, coldest[1] + left)
    return Explanation(base, heat, patch, hottest, coldest)


def render(rgb: np.ndarray, explanation: Explanation) -> bytes:
    """A PNG of the heatmap drawn over the picture (red: hiding it lowers p_fake the most)."""
    scale = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
    if scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    height, width = rgb.shape[:2]
    heat = np.clip(explanation.heat, 0, None)
    heat = heat / heat.max() if heat.max() > 0 else heat
    heat = cv2.resize(heat.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    colours = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 0.55, colours, 0.45, 0)
    ok, encoded = cv2.imencode(".png", blended)
    if not ok:
        raise ValueError("could not encode the heatmap")
    return encoded.tobytes()


def heatmap_for(settings: Settings, database: Database, image_id: int,
                loaded: dict[str, Classifier] | None = None) -> tuple[bytes, Explanation, str, str]:
    """The heatmap PNG of a recorded image for the classifier version of its latest verdict (the active one
    when it has none), its explanation, that version, and the file's path. ``loaded`` caches classifiers."""
    from sqlalchemy import select

    from fakewatch.classifier import load
    from fakewatch.db.tables import Image, Verdict
    from fakewatch.names import to_fs
    from fakewatch.registry import Registry, narrowest

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
