import json
import shutil
from pathlib import Path

import pytest

from fakewatch.errors import ClassifierNotFound, IncompatibleClassifier
from fakewatch.registry import CARD_FILE, Registry, read_version, validate_card

VALID = {"format_version": 1, "version": "v1", "architecture": "cnn",
         "input_spec": {"size": 32, "color_order": "RGB", "dtype": "uint8", "scaling": "x", "resize": "y",
                        "format_version": 1},
         "threshold": 0.5, "temperature": 1.0, "training_data": {}, "metrics": {}, "created_at": "2026-01-01",
         "parent": None, "weights_sha256": "0" * 64}


@pytest.mark.parametrize("change, message", [
    ({"format_version": 99}, "format"),
    ({"input_spec": {**VALID["input_spec"], "color_order": "BGR"}}, "input spec"),
    ({"input_spec": {"size": 32, "colour": "RGB"}}, "malformed"),
    ({"threshold": 1.5}, "threshold"),
])
def test_card_mismatch_raises(change: dict, message: str) -> None:
    with pytest.raises(IncompatibleClassifier, match=message):
        validate_card({**VALID, **change}, Path("/x"))


def test_missing_fields_are_named() -> None:
    card = dict(VALID)
    del card["temperature"]
    with pytest.raises(IncompatibleClassifier, match="temperature"):
        validate_card(card, Path("/x"))


def test_weights_must_match_card(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "classifier.keras").write_bytes(b"not the weights the card describes")
    (folder / CARD_FILE).write_text(json.dumps(VALID))
    with pytest.raises(IncompatibleClassifier, match="sha256"):
        read_version(folder)


def test_unknown_version(settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClassifierNotFound):
        Registry(settings, builtin_dir=Path("/nonexistent")).find("no-such-version")


def test_missing_card(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "lonely").mkdir()
    with pytest.raises(IncompatibleClassifier, match="card"):
        Registry(settings).find(str(tmp_path / "lonely"))


def test_activate_and_resolve(tmp_path: Path, settings, stand_in_classifier) -> None:  # type: ignore[no-untyped-def]
    copy = settings.registry_path / stand_in_classifier.version
    shutil.copytree(stand_in_classifier.path, copy)
    registry = Registry(settings, builtin_dir=tmp_path / "none")
    with pytest.raises(ClassifierNotFound):
        registry.active_version()
    registry.activate(stand_in_classifier.version)
    assert registry.resolve().version == stand_in_classifier.version
    assert json.loads((settings.registry_path / "ACTIVE").read_text()) == {"any": stand_in_classifier.version}


def test_an_older_plain_active_file_still_names_the_active_version(tmp_path: Path, settings,  # type: ignore[no-untyped-def]
                                                                   stand_in_classifier) -> None:
    shutil.copytree(stand_in_classifier.path, settings.registry_path / stand_in_classifier.version)
    (settings.registry_path / "ACTIVE").write_text(stand_in_classifier.version + "\n")
    registry = Registry(settings, builtin_dir=tmp_path / "none")
    assert registry.active_versions() == {"any": stand_in_classifier.version}
    assert registry.in_use() == [stand_in_classifier.version]


def test_one_version_is_active_per_domain_and_any_replaces_them_all(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from fakewatch.classifiers.pixel_hash import write_pixel_hash_version

    def version(name: str, domain: dict | None) -> None:
        made = write_pixel_hash_version(settings.registry_path / name, name)
        if domain is not None:
            card = json.loads((made.path / "card.json").read_text())
            card["domain"] = domain
            (made.path / "card.json").write_text(json.dumps(card))

    version("small", {"name": "thumbnail", "min_side": 1, "max_side": 64})
    version("large", {"name": "photo", "min_side": 128, "max_side": None})
    version("all", None)
    registry = Registry(settings, builtin_dir=tmp_path / "none")
    registry.activate("small")
    registry.activate("large")
    assert registry.active_versions() == {"thumbnail": "small", "photo": "large"}
    assert registry.active_version("photo") == "large"
    assert registry.find("large").domain.covers(300, 128) and not registry.find("large").domain.covers(127, 900)
    registry.activate("all")
    assert registry.in_use() == ["all"]
    registry.activate("small")
    assert registry.active_versions() == {"thumbnail": "small"}


def test_a_file_is_hashed_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fakewatch import registry

    hashed: list[Path] = []
    real = registry.file_sha256
    monkeypatch.setattr(registry, "file_sha256", lambda path: hashed.append(path) or real(path))
    weights = tmp_path / "classifier.onnx"
    weights.write_bytes(b"first version")
    first = registry.verified_sha256(weights)
    assert registry.verified_sha256(weights) == first and len(hashed) == 1
    weights.write_bytes(b"second version, another size")
    assert registry.verified_sha256(weights) != first and len(hashed) == 2


def test_lite_runtime_checks_the_export_it_runs_and_keras_the_weights(tmp_path: Path) -> None:
    from fakewatch.config import load_settings
    from fakewatch.registry import BUILTIN_DIR

    shipped = next(path for path in sorted(BUILTIN_DIR.iterdir()) if path.name.startswith("resnet-"))
    copy = tmp_path / shipped.name
    shutil.copytree(shipped, copy)
    with open(copy / "classifier.keras", "ab") as weights:
        weights.write(b"tampered")
    lite = load_settings({"home": str(tmp_path / "home"), "runtime": "lite"}, env={})
    keras = load_settings({"home": str(tmp_path / "home"), "runtime": "keras"}, env={})
    assert Registry(lite).find(str(copy)).version == shipped.name  # the export it runs is intact
    with pytest.raises(IncompatibleClassifier, match="classifier.keras does not match the sha256"):
        Registry(keras).find(str(copy))
    with open(copy / "classifier.onnx", "ab") as export:
        export.write(b"tampered")
    with pytest.raises(IncompatibleClassifier, match="export classifier.onnx does not match the sha256"):
        Registry(lite).find(str(copy))
