"""Where the classifier looked: an occlusion heatmap over the image, for any classifier and runtime.

The image goes through the same loading path as classification (:func:`fakewatch.imaging.decode` and
:func:`fakewatch.imaging.prepare`: a thumbnail classifier sees the whole picture at its input size, a crop
classifier its crops, of which the centre one is mapped here). A square patch of the image's mean colour
(a quarter of the input's side) slides over that input in steps of an eighth: 49 positions, classified
:data:`BATCH` at a time, so the runtime's working memory stays that of a small batch whatever the picture.
How much ``p_fake`` drops when a region is hidden is that region's heat.

The drawing is the picture at a readable size (at most :data:`MAX_SIDE` pixels a side; a small picture is
enlarged by a whole factor, nearest neighbour, to at least :data:`MIN_SIDE`), the heat blended over the
part the classifier saw, and a colour legend below it. Only the input-sized map and the drawing are ever
held besides the decoded picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from fakewatch import imaging
from fakewatch.classifiers.base import Classifier

PATCH_FRACTION = 0.25  # patch side, as a share of the input side
STRIDE_FRACTION = 0.125
BATCH = 8  # occluded copies per classifier call
MAX_SIDE = 1024  # the drawn picture's longest side, at most
MIN_SIDE = 384  # and at least (small pictures are enlarged by a whole factor)
LEGEND_HEIGHT = 46
LEGEND_MIN_WIDTH = 384
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Explanation:
    p_fake: float
    heat: np.ndarray  # p_fake drop per input pixel (negative: hiding it raised p_fake), input size x input size
    patch: int  # patch side in input pixels
    hottest: tuple[int, int]  # top-left corner (row, column) of the patch whose hiding lowers p_fake most
    coldest: tuple[int, int]
    region: tuple[float, float, float, float]  # top, left, height, width of the picture the input covers


def occluded(array: np.ndarray, corner: tuple[int, int], patch: int) -> np.ndarray:
    """``array`` with a ``patch``-sided square at ``corner`` filled with the image's mean colour."""
    hidden = array.copy()
    row, column = corner
    hidden[row:row + patch, column:column + patch] = array.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    return hidden


def covered_region(shape: tuple[int, ...], classifier: Classifier) -> tuple[float, float, float, float]:
    """Top, left, height and width (picture pixels) of what the classifier's (centre) input shows."""
    height, width = shape[:2]
    size = classifier.spec.size
    if classifier.spec.crops != "tiles":
        return 0.0, 0.0, float(height), float(width)
    grown_height, grown_width = height, width  # as imaging.fit_min_side scales a small picture up
    if min(height, width) < size:
        scale = size / min(height, width)
        grown_height, grown_width = max(size, round(height * scale)), max(size, round(width * scale))
    top, left = imaging.tile_origins(grown_height, grown_width, size, 1)[0]
    down_y, down_x = height / grown_height, width / grown_width
    return top * down_y, left * down_x, size * down_y, size * down_x


def _batches(array: np.ndarray, corners: list[tuple[int, int]], patch: int) -> Iterator[np.ndarray]:
    """The unchanged input, then its occluded copies, BATCH images at a time."""
    copies = [array] + [occluded(array, corner, patch) for corner in corners[:BATCH - 1]]
    yield np.stack(copies)
    for start in range(BATCH - 1, len(corners), BATCH):
        yield np.stack([occluded(array, corner, patch) for corner in corners[start:start + BATCH]])


def explain(classifier: Classifier, rgb: np.ndarray) -> Explanation:
    """The occlusion map of decoded ``rgb`` for ``classifier`` (for a crop classifier: over its centre
    crop, whose place in the picture is ``region``)."""
    array = imaging.prepare(rgb, classifier.spec)[0]
    size = array.shape[0]
    patch = max(1, round(size * PATCH_FRACTION))
    stride = max(1, round(size * STRIDE_FRACTION))
    corners = [(row, column) for row in range(0, size - patch + 1, stride)
               for column in range(0, size - patch + 1, stride)]
    scores = np.concatenate([classifier.predict(batch) for batch in _batches(array, corners, patch)])
    base, drops = float(scores[0]), float(scores[0]) - scores[1:]
    heat = np.zeros((size, size), np.float64)
    cover = np.zeros((size, size), np.float64)
    for (row, column), drop in zip(corners, drops):
        heat[row:row + patch, column:column + patch] += drop
        cover[row:row + patch, column:column + patch] += 1
    heat /= np.maximum(cover, 1)
    order = np.argsort(drops)
    return Explanation(base, heat, patch, corners[int(order[-1])], corners[int(order[0])],
                       covered_region(rgb.shape, classifier))


def drawing_scale(height: int, width: int) -> float:
    """How much the picture is scaled for the drawing: down to MAX_SIDE, or up by a whole factor to
    MIN_SIDE."""
    longest = max(height, width)
    if longest > MAX_SIDE:
        return MAX_SIDE / longest
    if longest < MIN_SIDE:
        return float(min(math.ceil(MIN_SIDE / longest), MAX_SIDE // longest))
    return 1.0


def legend(width: int, peak: float) -> np.ndarray:
    """A BGR strip: the colour scale from no drop (blue) to the largest drop in p_fake (red), labelled."""
    strip = np.full((LEGEND_HEIGHT, width, 3), (32, 24, 17), np.uint8)
    light = (236, 232, 226)
    if peak <= 0:
        cv2.putText(strip, "hiding no region lowers p(fake)", (8, 28), FONT, 0.45, light, 1, cv2.LINE_AA)
        return strip
    cv2.putText(strip, "p(fake) drop when a region is hidden", (8, 15), FONT, 0.42, light, 1, cv2.LINE_AA)
    high = f"{peak:.3f}"
    (text_width, _), _ = cv2.getTextSize(high, FONT, 0.42, 1)
    left, right = 22, width - text_width - 14
    ramp = np.linspace(0, 255, max(1, right - left)).astype(np.uint8)[np.newaxis, :]
    strip[24:38, left:right] = cv2.applyColorMap(np.repeat(ramp, 14, axis=0), cv2.COLORMAP_JET)
    cv2.putText(strip, "0", (8, 36), FONT, 0.42, light, 1, cv2.LINE_AA)
    cv2.putText(strip, high, (right + 6, 36), FONT, 0.42, light, 1, cv2.LINE_AA)
    return strip


def render(rgb: np.ndarray, explanation: Explanation) -> bytes:
    """A PNG of the heatmap blended over the picture (red: hiding it lowers p_fake the most), with a
    legend below."""
    height, width = rgb.shape[:2]
    scale = drawing_scale(height, width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = cv2.resize(rgb, shape, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    drawn = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    heat = np.clip(explanation.heat, 0, None)
    peak = float(heat.max())
    top, left, region_height, region_width = (round(value * scale) for value in explanation.region)
    bottom, right = min(shape[1], top + max(1, region_height)), min(shape[0], left + max(1, region_width))
    if peak > 0 and bottom > top and right > left:
        scaled = cv2.resize((heat / peak).astype(np.float32), (right - left, bottom - top),
                            interpolation=cv2.INTER_LINEAR)
        colours = cv2.applyColorMap(np.clip(scaled * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
        drawn[top:bottom, left:right] = cv2.addWeighted(drawn[top:bottom, left:right], 0.55, colours, 0.45, 0)
    if (top, left, bottom, right) != (0, 0, shape[1], shape[0]):  # where the crop classifier looked
        cv2.rectangle(drawn, (left, top), (right - 1, bottom - 1), (255, 255, 255), 1)
    if drawn.shape[1] < LEGEND_MIN_WIDTH:  # a tall thin picture: room beside it for the legend's text
        pad = LEGEND_MIN_WIDTH - drawn.shape[1]
        drawn = cv2.copyMakeBorder(drawn, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_CONSTANT, value=(24, 19, 14))
    ok, encoded = cv2.imencode(".png", np.vstack([drawn, legend(drawn.shape[1], peak)]))
    if not ok:
        raise ValueError("could not encode the heatmap")
    return encoded.tobytes()
