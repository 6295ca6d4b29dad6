"""Evidence through `fakewatch scan`: proof outranks the classifier, camera hints never flip a label,
rows and filters carry reasons and evidence, strict C2PA mode and trust anchors, analyzer history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fakewatch import imaging
from fakewatch.classifiers.loading import load
from tests.provenance import (
    A1111,
    COMFY_PROMPT,
    c2pa_signed,
    jpeg,
    pixels,
    png_with_text,
    resaved,
    signing_chain,
    tamper_pixels,
    write,
    xmp_packet,
)


def judged(classifier: Any, label: str, start: int, make: Any) -> bytes:
    """The first file ``make(seed)`` builds that the stand-in classifier alone calls ``label``."""
    for seed in range(start, start + 200):
        data = make(seed)
        array = imaging.load_input(data, classifier.spec, 10 ** 8)
        p_fake = float(classifier.predict(array[None])[0])
        if (p_fake >= classifier.threshold + 0.1) == (label == "fake") and abs(p_fake - classifier.threshold) > 0.1:
            return data  # type: ignore[no-any-return]
    raise AssertionError(f"no {label} among 200 seeds")


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    pytest.importorskip("c2pa")
    return signing_chain()


@pytest.fixture
def folder(tmp_path: Path, stand_in_classifier, chain) -> Path:  # type: ignore[no-untyped-def]
    classifier = load(stand_in_classifier)
    where = tmp_path / "incoming"
    real = lambda maker, start: judged(classifier, "real", start, maker)  # noqa: E731
    write(where, "a1111.png", real(lambda seed: png_with_text(pixels(seed), {"parameters": A1111}), 0))
    write(where, "comfy.png", real(lambda seed: png_with_text(pixels(seed), {"prompt": json.dumps(COMFY_PROMPT)}), 200))
    write(where, "xmp.jpg", real(lambda seed: jpeg(pixels(seed), xmp=xmp_packet()), 400))
    write(where, "software.jpg", real(lambda seed: jpeg(pixels(seed), exif={0x0131: "Midjourney"}), 600))
    write(where, "c2pa.jpg", real(lambda seed: c2pa_signed(jpeg(pixels(seed)), chain), 800))
    write(where, "c2pa_edited.jpg", tamper_pixels(c2pa_signed(jpeg(pixels(1001)), chain)))
    write(where, "resaved.jpg", resaved(png_with_text(pixels(1002), {"parameters": A1111})))
    camera = {0x010F: "Nikon", 0x0110: "NIKON Z 6"}
    write(where, "camera_fake.jpg", judged(classifier, "fake", 1100, lambda seed: jpeg(pixels(seed), exif=camera)))
    write(where, "camera_real.jpg", real(lambda seed: jpeg(pixels(seed), exif=camera), 1300))
    return where


def scan_rows(run_cli: Any, folder: Path) -> dict[str, dict[str, Any]]:
    output = run_cli("scan", "--format", "json", str(folder)).output
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {Path(row["path"]).name: row for row in rows}


def test_proof_outranks_the_classifier_and_camera_hints_never_flip(folder: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    rows = scan_rows(run_cli, folder)
    proven = {"a1111.png": "unsigned generator parameters: AUTOMATIC1111/Forge generation parameters, model "
                           "sd_xl_base_1.0",
              "comfy.png": "unsigned generator parameters: ComfyUI generation parameters, model "
                           "flux1-dev.safetensors",
              "xmp.jpg": "unsigned XMP metadata: XMP DigitalSourceType trainedAlgorithmicMedia",
              "software.jpg": "unsigned EXIF tag: EXIF Software Midjourney"}
    for name, summary in proven.items():
        row = rows[name]
        assert row["p_fake"] < row["threshold"]  # the classifier alone said real, and the reason says so
        disagrees = f"; the classifier disagrees (p {row['p_fake']:.2f})"
        assert (row["label"], row["reason"], row["reason_detail"]) == ("fake", "provenance", summary + disagrees)
        assert row["confidence"] == pytest.approx(max(row["p_fake"], 1 - row["p_fake"]))  # anyone can write it
        assert row["evidence"][0]["strength"] == "proves_ai"
    c2pa = rows["c2pa.jpg"]
    assert (c2pa["label"], c2pa["reason"], c2pa["confidence"]) == ("fake", "provenance", 1.0)  # signed
    assert c2pa["reason_detail"].startswith("signed C2PA credentials: C2PA ")
    assert "untrusted signer" in c2pa["reason_detail"] and "TestGen Image Model" in c2pa["reason_detail"]
    edited = rows["c2pa_edited.jpg"]
    assert edited["reason"] == "classifier" and edited["evidence"][0]["kind"] == "c2pa_invalid"
    assert rows["resaved.jpg"]["reason"] == "classifier" and rows["resaved.jpg"]["evidence"] == []
    for name, label in (("camera_fake.jpg", "fake"), ("camera_real.jpg", "real")):
        assert (rows[name]["label"], rows[name]["reason"]) == (label, "classifier")
        assert [item["kind"] for item in rows[name]["evidence"]] == ["camera_exif"]

    listed = run_cli("results", "--reason", "provenance", "--format", "json").output.splitlines()
    assert {Path(json.loads(line)["path"]).name for line in listed} == {*proven, "c2pa.jpg"}
    cameras = run_cli("results", "--evidence", "camera_exif", "--format", "paths").output.split()
    assert sorted(Path(path).name for path in cameras) == ["camera_fake.jpg", "camera_real.jpg"]
    shown = json.loads(run_cli("show", "--json", str(folder / "c2pa.jpg")).output)
    assert shown["evidence"][0]["details"]["signer"] == "Test Generator Signer"
    assert shown["history"][0]["reason"] == "provenance"
    table = run_cli("results", "--reason", "provenance").output
    assert "[provenance: unsigned generator parameters: ComfyUI generation parameters" in table
    assert "; the classifier disagrees (p 0." in table
    summary = run_cli("show", str(folder / "a1111.png")).output
    assert "provenance: unsigned generator parameters: AUTOMATIC1111" in summary
    assert "the classifier disagrees (p 0." in summary


def test_strict_c2pa_counts_only_trusted_signers(folder: Path, env: dict[str, str], tmp_path: Path,
                                                 chain) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from fakewatch.cli import cli

    def scan(extra: dict[str, str], home: str) -> dict[str, Any]:
        result = CliRunner().invoke(cli, ["scan", "--format", "json", str(folder / "c2pa.jpg")],
                                    env={**env, "FAKEWATCH_HOME": str(tmp_path / home), **extra}, obj={})
        return json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))

    strict = scan({"FAKEWATCH_C2PA_STRICT": "true"}, "strict")
    assert (strict["label"], strict["reason"]) == ("real", "classifier")
    assert strict["evidence"][0]["strength"] == "suggests_ai"
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(chain.root_pem)
    trusted = scan({"FAKEWATCH_C2PA_STRICT": "true", "FAKEWATCH_C2PA_TRUST_ANCHORS": str(anchors)}, "trusted")
    assert (trusted["label"], trusted["reason"]) == ("fake", "provenance")
    assert "(trusted signer)" in trusted["reason_detail"]


def test_a_failing_analyzer_is_recorded_and_a_newer_version_keeps_history(tmp_path: Path, run_cli,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import fakewatch.db.evidence as stored
    import fakewatch.evidence.analyzers as analyzers

    where = tmp_path / "in"
    write(where, "a.png", png_with_text(pixels(3), {"parameters": A1111}))

    def broken(blocks: Any, exif: Any) -> list[Any]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(analyzers, "generation_parameters", broken)
    row = scan_rows(run_cli, where)["a.png"]
    assert row["status"] == "done" and row["reason"] == "classifier"
    assert row["evidence"][0]["kind"] == "parameters_error" and "RecursionError" in row["evidence"][0]["summary"]
    monkeypatch.undo()
    newer = stored.VERSION.replace("parameters:1", "parameters:2")  # an analyzer learnt more
    monkeypatch.setattr(stored, "VERSION", newer)
    original = analyzers.generation_parameters
    monkeypatch.setattr(analyzers, "generation_parameters", lambda blocks, exif: [
        analyzers.Evidence("parameters", 2, item.kind, item.strength, item.summary, item.details)
        for item in original(blocks, exif)])
    run_cli("scan", "--force", str(where))  # re-classified: the newer analyzer reads it again
    shown = json.loads(run_cli("show", "--json", str(where / "a.png")).output)
    assert sorted((item["analyzer"], item["kind"]) for item in shown["evidence"]) == [
        ("parameters/1", "parameters_error"), ("parameters/2", "generator_parameters")]
    assert shown["reason"] == "provenance"


def test_evidence_is_read_once_per_content(tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import fakewatch.classify.runtime as runtime

    calls: list[int] = []
    original = runtime.evidence.analyze
    monkeypatch.setattr(runtime.evidence, "analyze", lambda *args: calls.append(1) or original(*args))
    where = tmp_path / "in"
    data = png_with_text(pixels(4), {"parameters": A1111})
    write(where, "a.png", data)
    write(where / "copy", "same.png", data)
    run_cli("scan", str(where))
    run_cli("scan", "--force", str(where))  # re-classified, but the analyzers already read this content
    assert len(calls) == 1
    assert np.all([row["reason"] == "provenance" for row in scan_rows(run_cli, where).values()])


def test_details_over_the_limit_stay_valid_json_in_show_the_api_and_the_page(tmp_path: Path, run_cli,
                                                                             env_settings) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from fakewatch.db.evidence import MAX_DETAILS
    from fakewatch.web.app import create_app
    from tests.hostile import png_huge_text

    write(tmp_path / "in", "huge.png", png_huge_text(100_000))  # a 100,000-character model name
    (row,) = scan_rows(run_cli, tmp_path / "in").values()
    assert "AUTOMATIC1111/Forge" in run_cli("show", str(row["id"])).output
    shown = json.loads(run_cli("show", "--json", str(row["id"])).output)
    details = shown["evidence"][0]["details"]
    assert details["truncated"] is True and details["tool"] == "AUTOMATIC1111/Forge"
    assert len(json.dumps(details)) <= MAX_DETAILS
    assert details["settings"]["Model"].endswith("(100,000 characters)")
    token = "test-token-0123456789"
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(env_settings, token), base_url="http://127.0.0.1:8000") as client:
        answer = client.get(f"/api/v1/images/{row['id']}", headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["evidence"][0]["details"]["truncated"] is True
        page = client.get(f"/images/{row['id']}", headers=auth)
        assert page.status_code == 200 and "AUTOMATIC1111/Forge generation parameters" in page.text
