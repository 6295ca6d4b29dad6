"""The photo classifier's whole path, with a randomly initialised backbone (no weights needed): train with
held-out groups, publish with a checked export, route photos to it beside a thumbnail classifier, evaluate
per group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from fakewatch.classifiers.pixel_hash import write_pixel_hash_version
from fakewatch.config import load_settings
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from fakewatch.registry import Registry
from tests.conftest import write_image

pytest.importorskip("keras")


def _photo_folder(root: Path) -> Path:
    rng = np.random.default_rng(5)
    for label, groups in (("real", ("cam_a", "cam_b", "scans")), ("fake", ("gen_x", "gen_y", "gen_z"))):
        for group in groups:
            for index in range(4):
                height, width = int(rng.integers(180, 320)), int(rng.integers(180, 320))
                rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                if label == "real":  # something a network can pick up: smooth real, noisy fake
                    rgb = np.repeat(np.repeat(rgb[::8, ::8], 8, axis=0), 8, axis=1)[:height, :width]
                fmt = "PNG" if index % 2 else "JPEG"
                write_image(root / label / group / f"{group}_{index}.{fmt.lower()}", rgb, fmt=fmt)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from fakewatch.cli import cli

    root = tmp_path_factory.mktemp("photo")
    data = _photo_folder(root / "data")
    env = {"FAKEWATCH_HOME": str(root / "home"), "FAKEWATCH_CONFIG": "", "FAKEWATCH_DATABASE_URL": "",
           "FAKEWATCH_BROKER_URL": "", "FAKEWATCH_CLASSIFIER": ""}
    result = CliRunner().invoke(cli, ["train-photo", str(data), "--crop", "96", "--max-crops", "3", "--copies", "1",
                                      "--epochs", "1", "--holdout-group", "fake/gen_z", "--holdout-group",
                                      "real/scans", "--validation", "groups", "--valid-fraction", "0.5",
                                      "--activate"], env=env, obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root, data, env, result.output


def test_training_publishes_a_photo_domain_version_with_its_export_and_groups(trained) -> None:  # type: ignore[no-untyped-def]
    root, _, _, output = trained
    settings = load_settings({"home": str(root / "home")}, env={})
    registry = Registry(settings)
    version = registry.find(registry.active_versions()["photo"])
    card = version.card
    assert card["domain"]["name"] == "photo" and card["input_spec"]["crops"] == "tiles"
    assert card["input_spec"]["size"] == 96 and card["input_spec"]["max_crops"] == 3
    assert card["export"]["max_abs_delta_p_fake"] <= 1e-4  # the export is the fused network, both views in it
    views = card["views"]  # both views trained and reported alone, then fused on validation images
    assert views["residual"]["width"] == 16 and set(views["fusion"]) >= {"semantic_weight", "residual_weight"}
    assert {"test", "heldout"} <= set(views["semantic"]["metrics"]) and "heldout" in views["residual"]["metrics"]
    assert set(card["metrics"]["heldout"]["groups"]) == {"fake/gen_z", "real/scans"}
    assert "fake/gen_z" not in card["training_data"]["groups"]["train"]
    assert "--holdout-group fake/gen_z" in card["training"]["command"]
    groups = card["training_data"]["groups"]  # threshold chosen on a generator and a camera never trained on
    assert card["training"]["validation"] == "groups" and "--validation groups" in card["training"]["command"]
    assert {group.split("/")[0] for group in groups["valid"]} == {"real", "fake"}
    assert not set(groups["valid"]) & set(groups["train"]) and len(groups["train"]) == 2
    assert "held-out groups: 8 images" in output
    assert registry.active_versions()["thumbnail"] != version.version  # the shipped thumbnail one stays


def test_photos_go_to_the_photo_classifier_and_thumbnails_to_the_thumbnail_one(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from fakewatch.cli import cli

    root, _, env, _ = trained
    settings = load_settings({"home": str(root / "home")}, env={})
    registry = Registry(settings)
    write_pixel_hash_version(settings.registry_path / "thumbs", "thumbs",
                             domain={"name": "thumbnail", "min_side": 1, "max_side": 64})
    registry.activate("thumbs")
    rng = np.random.default_rng(1)
    folder = tmp_path / "drop"
    for name, shape in {"tiny": (32, 32), "mid": (90, 90), "big": (400, 300), "grey": (200, 200)}.items():
        rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        write_image(folder / f"{name}.png", rgb[..., :1].repeat(3, axis=2) if name == "grey" else rgb, fmt="PNG")
    env = {**env, "FAKEWATCH_HOME": str(root / "home")}
    result = CliRunner().invoke(cli, ["scan", str(folder)], env=env, obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Database(settings.resolved_database_url).session() as session:
        rows = session.execute(select(Image.path, Verdict.classifier, Verdict.label, Verdict.reason)
                               .join(Verdict, Verdict.content_id == Image.content_id)
                               .where(Image.path.like(f"{folder}%"))).all()
    judged = {Path(row.path).stem: row for row in rows}
    photo = registry.active_versions()["photo"]
    assert judged["tiny"].classifier == "thumbs"
    assert judged["big"].classifier == photo and judged["grey"].classifier == photo
    assert (judged["mid"].classifier, judged["mid"].label, judged["mid"].reason) == ("none", "uncertain",
                                                                                    "out_of_domain")
    listed = CliRunner().invoke(cli, ["classifiers", "list"], env=env, obj={}, catch_exceptions=False).output
    assert "thumbs" in listed and photo in listed and listed.count("active") >= 2


def test_evaluate_reports_every_group_and_robustness(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from fakewatch.cli import cli

    root, data, env, _ = trained
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--domain", "photo", "--out", str(out)], env=env,
                                obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["groups"]["groups"]) == {"real/cam_a", "real/cam_b", "real/scans", "fake/gen_x",
                                                "fake/gen_y", "fake/gen_z"}
    assert metrics["groups"]["groups"]["real/scans"]["count"] == 4
    assert {"jpeg_q60", "resize_0.5x", "resize_2x", "blur_sigma1"} <= set(metrics["robustness"])
    assert (out / "groups.png").stat().st_size > 0 and (out / "roc.png").is_file()
    assert "real/scans" in result.output


def test_the_fused_export_gives_both_views_and_the_runtime_reads_them(trained) -> None:  # type: ignore[no-untyped-def]
    from fakewatch.classifiers.base import Views, start_prepared
    from fakewatch.classifiers.loading import load
    from fakewatch.imaging import prepare

    root, _, _, _ = trained
    settings = load_settings({"home": str(root / "home")}, env={})
    registry = Registry(settings)
    version = registry.find(registry.active_versions()["photo"])
    classifier = load(version)
    assert isinstance(getattr(classifier, "views", None), Views)  # per-view temperature and threshold from the card
    rng = np.random.default_rng(9)
    prepared = [prepare(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8), version.spec) for _ in range(3)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        pending = start_prepared(classifier, prepared, executor)
        p_fake, views = pending.result(), pending.views()  # type: ignore[attr-defined]
    assert p_fake.shape == (3,) and views.shape == (3, 2)
    crops = np.concatenate(prepared)  # each crop's fused logit is the fusion of its two view logits
    raw = classifier.start(crops, calibrate=False)  # type: ignore[attr-defined]
    card = version.card["views"]["fusion"]
    fused = raw.views() @ np.array([card["semantic_weight"], card["residual_weight"]]) + card["bias"]
    assert np.allclose(raw.result(), fused, atol=1e-3)
    assert np.allclose(views[0], raw.views()[:len(prepared[0])].mean(axis=0), atol=1e-5)  # mean over its crops
