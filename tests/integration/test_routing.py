"""Several active classifiers: each image goes to the one whose domain covers it; none mixes in a call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from fakewatch.classifiers.base import submit
from fakewatch.classifiers.loading import load
from fakewatch.classifiers.pixel_hash import write_pixel_hash_version
from fakewatch.classify.runtime import Runtime
from fakewatch.config import load_settings
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from fakewatch.mode import open_mode
from fakewatch.registry import Registry
from tests.conftest import write_image

THUMBNAIL = {"name": "thumbnail", "min_side": 1, "max_side": 64}
PHOTO = {"name": "photo", "min_side": 128, "max_side": None}


@pytest.fixture
def routed(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings({"home": str(tmp_path / "home")}, env={})
    write_pixel_hash_version(settings.registry_path / "thumbs", "thumbs", domain=THUMBNAIL)
    write_pixel_hash_version(settings.registry_path / "photos", "photos", size=64, domain=PHOTO, crops="tiles",
                             max_crops=5)
    registry = Registry(settings, builtin_dir=tmp_path / "none")
    registry.activate("thumbs")
    registry.activate("photos")
    return settings


def _images(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    shapes = {"thumb": (32, 32), "between": (100, 100), "photo": (300, 200), "panorama": (130, 2000),
              "grey_photo": (256, 256)}
    paths = {}
    for name, (height, width) in shapes.items():
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if name == "grey_photo":
            rgb[:] = rgb[..., :1]
        paths[name] = write_image(folder / f"{name}.png", rgb, fmt="PNG")
    return paths


def _record(settings, folder: Path, classify: bool) -> list[int]:  # type: ignore[no-untyped-def]
    with open_mode(settings) as mode:
        for batch in mode.intake.batches([folder]):
            (mode.intake.process if classify else mode.intake.record)(batch)
    with Database(settings.resolved_database_url).session() as session:
        return list(session.scalars(select(Image.id)))


def test_each_image_goes_to_the_classifier_of_its_domain(routed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _images(tmp_path / "in")
    _record(routed, tmp_path / "in", classify=True)
    with Database(routed.resolved_database_url).session() as session:
        rows = session.execute(select(Image.path, Verdict.classifier, Verdict.label, Verdict.reason,
                                      Verdict.reason_detail)
                               .join(Verdict, Verdict.content_id == Image.content_id)).all()
    judged = {Path(row.path).stem: row for row in rows}
    assert len(judged) == 5
    assert judged["thumb"].classifier == "thumbs"
    assert {judged[name].classifier for name in ("photo", "panorama", "grey_photo")} == {"photos"}
    between = judged["between"]
    assert (between.classifier, between.label, between.reason) == ("none", "uncertain", "out_of_domain")
    assert "100x100" in between.reason_detail and "thumbnail" in between.reason_detail


def test_a_call_never_mixes_classifiers_and_crops_stay_inside(routed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _images(tmp_path / "in")
    ids = _record(routed, tmp_path / "in", classify=False)
    calls: list[tuple[str, tuple[int, ...]]] = []

    def recording_loader(version, batch_size, runtime):  # type: ignore[no-untyped-def]
        inner = load(version, batch_size, runtime)

        class Recorder:
            views = None

            def __init__(self) -> None:
                self.version, self.spec, self.threshold = inner.version, inner.spec, inner.threshold

            def predict(self, images):  # type: ignore[no-untyped-def]
                calls.append((self.version, images.shape))
                return inner.predict(images)

            def start(self, images, executor):  # type: ignore[no-untyped-def]
                return submit(executor, self.predict, images)
        return Recorder()

    registry = Registry(routed, builtin_dir=tmp_path / "none")
    runtime = Runtime(routed, Database(routed.resolved_database_url), registry, loader=recording_loader)
    outcome = runtime.classify_ids(ids)
    assert outcome.classified == 5
    assert sorted(version for version, _ in calls) == ["photos", "thumbs"]  # one call each
    for version, shape in calls:
        assert shape[1:] == ((32, 32, 3) if version == "thumbs" else (64, 64, 3))
    # with 64 px crops every photo here is 1.5 crops long on both sides: centre + 4 corners each
    assert sum(shape[0] for version, shape in calls if version == "photos") == 5 + 5 + 5


def test_activating_an_any_version_sends_everything_to_it(routed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_pixel_hash_version(routed.registry_path / "everything", "everything")
    Registry(routed, builtin_dir=tmp_path / "none").activate("everything")
    _images(tmp_path / "in")
    _record(routed, tmp_path / "in", classify=True)
    with Database(routed.resolved_database_url).session() as session:
        assert set(session.scalars(select(Verdict.classifier))) == {"everything"}


def test_every_size_and_layout_gets_a_verdict_or_a_recorded_error(routed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image as PILImage

    folder = tmp_path / "odd"
    folder.mkdir()
    rng = np.random.default_rng(9)
    PILImage.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(folder / "one_pixel.png")
    PILImage.fromarray(rng.integers(0, 256, (1, 3000, 3), dtype=np.uint8)).save(folder / "line.png")
    PILImage.fromarray(rng.integers(0, 256, (200, 3000), dtype=np.uint8), "L").save(folder / "grey_panorama.png")
    PILImage.fromarray(rng.integers(0, 256, (300, 300, 4), dtype=np.uint8), "RGBA").save(folder / "alpha.png")
    big = np.repeat(np.repeat(rng.integers(0, 256, (60, 60, 3), dtype=np.uint8), 100, axis=0), 100, axis=1)
    PILImage.fromarray(big).save(folder / "big.jpg", quality=80)  # 6000 x 6000
    _record(routed, folder, classify=True)
    with Database(routed.resolved_database_url).session() as session:
        rows = {Path(row.path).stem: row for row in session.execute(
            select(Image.path, Image.status, Image.error_kind, Verdict.classifier, Verdict.reason)
            .outerjoin(Verdict, Verdict.content_id == Image.content_id))}
    assert {name: row.status for name, row in rows.items()} == dict.fromkeys(
        ("one_pixel", "line", "grey_panorama", "alpha", "big"), "done")
    assert rows["one_pixel"].classifier == "thumbs"
    assert (rows["line"].classifier, rows["line"].reason) == ("none", "out_of_domain")
    assert {rows[name].classifier for name in ("grey_panorama", "alpha", "big")} == {"photos"}
