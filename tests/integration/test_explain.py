"""`fakewatch explain` and the occlusion heatmap, tested for real with the shipped classifier (ONNX runtime)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fakewatch.classifiers.explain import LEGEND_HEIGHT, MIN_SIDE, explain, occluded
from fakewatch.classifiers.loading import load
from fakewatch.config import load_settings
from fakewatch.registry import Registry
from tests.conftest import noisy_image, smooth_image, write_image


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load(Registry(load_settings(env={})).resolve("thumbnail"), 256, "lite")


def flagged(classifier, images: list[np.ndarray]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    scores = classifier.predict(np.stack([cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
                                          for image in images]))
    return [image for image, score in zip(images, scores) if score >= classifier.threshold]


def test_hiding_the_hottest_region_lowers_p_fake_more_than_a_cold_one(shipped) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    images = flagged(shipped, [noisy_image(rng, 32) for _ in range(12)])[:6]
    assert len(images) >= 4
    for image in images:
        explanation = explain(shipped, image)
        assert explanation.p_fake >= shipped.threshold
        array = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
        hot, cold = shipped.predict(np.stack([occluded(array, explanation.hottest, explanation.patch),
                                              occluded(array, explanation.coldest, explanation.patch)]))
        assert hot < cold, (hot, cold)
        assert explanation.p_fake - hot > 0


def test_the_heat_sits_on_the_textured_part_of_the_picture(shipped) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    candidates = []
    for _ in range(40):
        picture = smooth_image(rng, 32)
        picture[16:, 16:] = noisy_image(rng, 16)  # generator-like texture in the bottom-right quarter only
        candidates.append(picture)
    pictures = flagged(shipped, candidates)[:4]
    assert pictures, "the shipped classifier flags none of the partly textured pictures"
    for picture in pictures:
        explanation = explain(shipped, picture)
        heat = explanation.heat
        assert heat[16:, 16:].mean() > heat[:16, :16].mean()  # the textured quarter is hotter than its opposite
        row, column = explanation.hottest
        assert row + explanation.patch > 16 and column + explanation.patch > 16


def test_explain_command_writes_the_heatmap_over_the_picture(tmp_path: Path, run_cli, shipped) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    picture = cv2.resize(flagged(shipped, [noisy_image(rng, 32) for _ in range(10)])[0], (64, 64),
                         interpolation=cv2.INTER_NEAREST)  # still a thumbnail: the shipped thumbnail classifier
    path = write_image(tmp_path / "in" / "suspect.png", picture, fmt="PNG")
    run_cli("--classifier", "", "scan", str(path))
    out = tmp_path / "heat.png"
    result = run_cli("--classifier", "", "explain", str(path), "--out", str(out))
    assert "lowers it the most" in result.output and shipped.version in result.output
    drawn = cv2.imread(str(out))
    assert drawn.shape == (MIN_SIDE + LEGEND_HEIGHT, MIN_SIDE, 3)  # enlarged 6 times to be seen; legend below
    enlarged = cv2.resize(picture, (MIN_SIDE, MIN_SIDE), interpolation=cv2.INTER_NEAREST)
    assert not np.array_equal(cv2.cvtColor(drawn[:MIN_SIDE], cv2.COLOR_BGR2RGB), enlarged)  # colours drawn over it
