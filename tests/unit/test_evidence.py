"""The evidence analyzers on files built here: what each finds, how strong it is, and what they survive."""

from __future__ import annotations

import time

import pytest

from fakewatch.evidence import analyze, proof
from fakewatch.evidence.c2pa import C2paOptions
from tests.provenance import (
    A1111,
    COMFY_PROMPT,
    c2pa_edited,
    c2pa_signed,
    hostile_metadata,
    jpeg,
    pixels,
    png_with_text,
    resaved,
    signing_chain,
    tamper_pixels,
    xmp_packet,
)


def kinds(found: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {item.kind: item.strength for item in found}


def test_a1111_and_comfyui_parameters_prove_ai_and_name_the_model() -> None:
    import json

    a1111 = analyze(png_with_text(pixels(1), {"parameters": A1111}), "png")
    assert kinds(a1111) == {"generator_parameters": "proves_ai"}
    assert proof(a1111).summary == "AUTOMATIC1111/Forge generation parameters, model sd_xl_base_1.0"  # type: ignore[union-attr]
    comfy = analyze(png_with_text(pixels(2), {"prompt": json.dumps(COMFY_PROMPT), "workflow": "{}"}), "png")
    assert proof(comfy).summary == "ComfyUI generation parameters, model flux1-dev.safetensors"  # type: ignore[union-attr]
    job = "a lighthouse --ar 3:2 Job ID: 1b2c3d4e-0000-4000-8000-123456789abc"
    midjourney = analyze(png_with_text(pixels(3), {"Description": job, "Author": "someone"}), "png")
    assert "Midjourney" in proof(midjourney).summary  # type: ignore[union-attr]
    novelai = analyze(png_with_text(pixels(4), {"Software": "NovelAI", "Source": "NovelAI Diffusion V4",
                                                "Comment": '{"steps": 28}'}), "png")
    assert proof(novelai).details["tool"] == "NovelAI"  # type: ignore[union-attr]
    in_exif = analyze(jpeg(pixels(5), exif={0x9286: "ASCII\0\0\0" + A1111}), "jpeg")  # A1111's JPEG form
    assert kinds(in_exif)["generator_parameters"] == "proves_ai"


def test_xmp_exif_and_camera_hints() -> None:
    assert kinds(analyze(jpeg(pixels(6), xmp=xmp_packet()), "jpeg")) == {"xmp_digital_source_type": "proves_ai"}
    composite = analyze(jpeg(pixels(6), xmp=xmp_packet(AI_COMPOSITE := AI_SOURCE_COMPOSITE)), "jpeg")
    assert composite[0].details["digital_source_types"] == [AI_COMPOSITE.rsplit("/", 1)[-1]]
    camera_source = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
    assert analyze(jpeg(pixels(6), xmp=xmp_packet(camera_source)), "jpeg") == []
    tool = analyze(jpeg(pixels(6), xmp=xmp_packet(camera_source, creator_tool="Midjourney v6")), "jpeg")
    assert kinds(tool) == {"xmp_creator_tool": "suggests_ai"}
    software = analyze(jpeg(pixels(7), exif={0x0131: "Adobe Firefly"}), "jpeg")
    assert kinds(software) == {"exif_generator_tag": "proves_ai"}
    dalle = analyze(jpeg(pixels(7), exif={0x9286: "ASCII\0\0\0Made with OpenAI Labs"}), "jpeg")
    assert proof(dalle).summary.startswith("DALL-E")  # type: ignore[union-attr]
    artist = analyze(jpeg(pixels(7), exif={0x013B: "made with stable diffusion"}), "jpeg")
    assert kinds(artist) == {"exif_generator_name": "suggests_ai"}
    camera = analyze(jpeg(pixels(8), exif={0x010F: "Canon", 0x0110: "Canon EOS R5", 0x0131: "Firmware 1.8"}), "jpeg")
    assert kinds(camera) == {"camera_exif": "suggests_camera"} and proof(camera) is None
    assert camera[0].summary == "Camera EXIF: Canon Canon EOS R5"


AI_SOURCE_COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


def test_a_resaved_copy_has_lost_everything() -> None:
    rich = jpeg(pixels(9), exif={0x0131: "Midjourney", 0x010F: "Canon"}, xmp=xmp_packet())
    assert len(analyze(rich, "jpeg")) == 3
    assert analyze(resaved(rich), "jpeg") == []
    assert analyze(resaved(png_with_text(pixels(9), {"parameters": A1111})), "jpeg") == []


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    pytest.importorskip("c2pa")
    return signing_chain()


def test_c2pa_intact_ai_manifest_proves_with_the_signer_shown_untrusted(chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    signed = c2pa_signed(jpeg(pixels(10)), chain)
    found = analyze(signed, "jpeg")
    assert kinds(found) == {"c2pa_ai_source": "proves_ai"}
    assert "trainedAlgorithmicMedia" in found[0].summary and "untrusted signer" in found[0].summary
    assert found[0].details["signer"] == "Test Generator Signer" and found[0].details["trusted_signer"] is False
    strict = analyze(signed, "jpeg", C2paOptions(strict=True))
    assert kinds(strict) == {"c2pa_ai_source": "suggests_ai"}
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(chain.root_pem)
    trusted = analyze(signed, "jpeg", C2paOptions(str(anchors), strict=True))
    assert kinds(trusted) == {"c2pa_ai_source": "proves_ai"} and trusted[0].details["trusted_signer"] is True
    assert "(trusted signer)" in trusted[0].summary


def test_c2pa_with_pixels_changed_after_signing_is_invalid_and_proves_nothing(chain) -> None:  # type: ignore[no-untyped-def]
    found = analyze(tamper_pixels(c2pa_signed(jpeg(pixels(11)), chain)), "jpeg")
    assert kinds(found) == {"c2pa_invalid": "none"} and proof(found) is None
    assert "assertion.dataHash.mismatch" in found[0].summary
    edited = analyze(c2pa_edited(c2pa_signed(jpeg(pixels(17)), chain), chain, jpeg(pixels(18))), "jpeg")
    assert kinds(edited) == {"c2pa_ai_source": "proves_ai"}  # found up the ingredient chain
    assert "in an ingredient made by TestGen Image Model 1.0, edited in Photo Editor 2.0" in edited[0].summary
    camera_made = analyze(c2pa_signed(jpeg(pixels(12)), chain, ai=False), "jpeg")
    assert kinds(camera_made) == {"c2pa_manifest": "none"}
    png = analyze(c2pa_signed(png_with_text(pixels(13), {}), chain, mime="image/png"), "png")
    assert kinds(png) == {"c2pa_ai_source": "proves_ai"}


def test_hostile_metadata_is_bounded_recorded_and_never_raises() -> None:
    for name, data in hostile_metadata(pixels(14)).items():
        started = time.perf_counter()
        found = analyze(data, "png" if name.endswith(".png") else "jpeg")
        assert time.perf_counter() - started < 5, name
        assert proof(found) is None or name == "huge_xmp.png", (name, found)
        assert any(item.strength == "none" and item.kind.endswith(("_error", "_damaged", "_invalid"))
                   for item in found), (name, found)  # the limit or the damage is on record


def test_fuzzed_metadata_never_raises() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    seeds = [(png_with_text(pixels(15), {"parameters": A1111, "prompt": '{"1": {"class_type": "X"}}'}), "png"),
             (jpeg(pixels(16), exif={0x0131: "NovelAI", 0x010F: "Nikon"}, xmp=xmp_packet()), "jpeg")]
    variants = 0
    for index in range(600):
        data, kind = seeds[index % 2]
        mutated = bytearray(data)
        for position in rng.integers(0, min(len(mutated), 2000), int(rng.integers(1, 12))):
            mutated[position] = int(rng.integers(0, 256))
        analyze(bytes(mutated), kind)
        variants += 1
    assert variants == 600


def test_the_stable_diffusion_watermark_reads_back_from_lossless_files_only() -> None:
    import cv2
    import numpy as np

    from fakewatch import imaging
    from fakewatch.evidence.watermark import MESSAGES, SDXL_BITS
    from tests.provenance import embed_watermark, png_bytes

    rng = np.random.default_rng(20)  # a textured picture, as generator output is: flat areas cannot hold it
    picture = cv2.GaussianBlur(np.clip(rng.normal(128, 20, (512, 512, 3)), 0, 255).astype(np.uint8), (3, 3), 0)
    sd1 = png_bytes(embed_watermark(picture, MESSAGES["Stable Diffusion 1.x (StableDiffusionV1)"]))
    found = analyze(sd1, "png", rgb=imaging.decode(sd1, 10 ** 8))
    assert kinds(found) == {"generator_watermark": "proves_ai"} and "StableDiffusionV1" in found[0].summary
    sdxl = png_bytes(embed_watermark(picture, SDXL_BITS, order="RGB"))
    assert analyze(sdxl, "png", rgb=imaging.decode(sdxl, 10 ** 8))[0].details["generator"] == "SDXL"
    as_jpeg = jpeg(imaging.decode(sd1, 10 ** 8), quality=95)  # 4:2:0 chroma: the watermark cannot survive
    assert analyze(as_jpeg, "jpeg", rgb=imaging.decode(as_jpeg, 10 ** 8)) == []
    for seed in range(30):  # no false alarm on pictures that carry none
        texture = np.clip(rng.normal(0, float(rng.uniform(0, 30)), (512, 512, 3)), -128, 127)
        plain = png_bytes(np.clip(cv2.resize(pixels(seed), (512, 512)) + texture, 0, 255).astype(np.uint8))
        assert analyze(plain, "png", rgb=imaging.decode(plain, 10 ** 8)) == []


def test_the_jpeg_walk_keeps_what_the_analyzers_read_and_skips_the_rest() -> None:
    from fakewatch.evidence.containers import blocks

    plain = blocks(jpeg(pixels(8)), "jpeg")
    assert not plain.carries_metadata and not plain.notes and plain.chroma_subsampled  # Pillow's 4:2:0 default
    tagged = blocks(jpeg(pixels(8), exif={0x0131: "Adobe Firefly"}, xmp=xmp_packet()), "jpeg")
    assert tagged.carries_metadata and len(tagged.exif) == 1 and len(tagged.xmp) == 1
    cut = jpeg(pixels(8))
    cut = cut[:20] + b"\xff\xe1\x40\x00" + b"x" * 10  # a segment announcing more bytes than the file has
    assert blocks(cut, "jpeg").notes == ["JPEG segment 0xe1 runs past the end of the file"]


def test_overlapping_exif_directories_stop_at_the_entry_budget() -> None:
    from tests.hostile import exif_ifd_bomb

    bomb = exif_ifd_bomb(140_000)  # two APP1 segments of directories that overlap and point at each other
    started = time.perf_counter()
    found = analyze(bomb, "jpeg")
    assert time.perf_counter() - started < 2
    (damaged,) = [item for item in found if item.kind == "metadata_damaged"]
    assert "over 4,096 EXIF directory entries" in damaged.summary
    assert len(damaged.details["notes"]) <= 20  # a repeated problem is noted once


def test_compressed_text_counts_its_inflated_bytes() -> None:
    from fakewatch.evidence.budget import MAX_INFLATED
    from fakewatch.evidence.containers import blocks
    from tests.hostile import png_text_bomb

    for xmp in (True, False):  # 12 compressed chunks of almost 4 MiB each, 4 KiB each in the file
        read = blocks(png_text_bomb(12, xmp=xmp), "png")
        kept = sum(map(len, read.xmp)) + sum(map(len, read.text.values()))
        assert 0 < kept <= MAX_INFLATED
        assert read.notes == [f"compressed metadata inflates beyond {MAX_INFLATED:,} bytes in all; "
                              "the rest was not read"]
    found = analyze(png_text_bomb(12, xmp=True), "png")
    assert kinds(found) == {"metadata_damaged": "none"}


def test_the_budget_counts_inflated_bytes_entries_and_time() -> None:
    import zlib

    from fakewatch.errors import MetadataDamaged
    from fakewatch.evidence.budget import Budget

    now = [0.0]
    budget = Budget(inflated=1000, entries=10, seconds=1.0, clock=lambda: now[0])
    assert budget.inflate(zlib.compress(b"a" * 600), 4000) == b"a" * 600
    with pytest.raises(ValueError, match="beyond 100 bytes"):  # one block too long: skipped, still counted
        budget.inflate(zlib.compress(b"b" * 300), 100)
    with pytest.raises(MetadataDamaged, match="beyond 1,000 bytes in all"):
        budget.inflate(zlib.compress(b"c" * 600), 4000)
    budget.visit(10)
    with pytest.raises(MetadataDamaged, match="over 10 EXIF directory entries"):
        budget.visit(1)
    later = Budget(clock=lambda: now[0])
    now[0] = 1.5
    with pytest.raises(MetadataDamaged, match="took over 1 s"):
        later.check_time()


def test_the_decoder_never_sees_text_chunks() -> None:
    import zlib

    from fakewatch import imaging, png
    from tests.hostile import png_text_bomb

    bomb = png_text_bomb(3, xmp=False)
    stripped = png.without_text(bomb)
    assert b"zTXt" not in stripped and len(stripped) < len(bomb) - 3 * 4000
    assert (imaging.decode(bomb, 10 ** 8) == imaging.decode(stripped, 10 ** 8)).all()
    plain = png_with_text(pixels(1), {})
    assert png.without_text(plain) is plain
    assert zlib.crc32(png.without_text(png_with_text(pixels(1), {"parameters": A1111}))) == zlib.crc32(plain)


def test_long_details_are_shortened_by_structure_into_valid_json() -> None:
    import json

    from fakewatch.db.evidence import MAX_DETAILS, details_json

    assert details_json({"tool": "A", "when": (1, 2)}) == '{"tool": "A", "when": [1, 2]}'
    nested: dict = {"deep": {}}  # type: ignore[type-arg]
    level = nested["deep"]
    for _ in range(50):
        level["next"] = {"text": "x" * 1000}
        level = level["next"]
    huge = {"tool": "A", "model": "m" * 100_000, "keys": list(range(50_000)), "nested": nested,
            **{f"key {index}": "v" * 300 for index in range(500)}}
    for details in (huge, {f"{index}" * 3000: index for index in range(100)}):
        text = details_json(details)
        assert len(text) <= MAX_DETAILS
        loaded = json.loads(text)
        assert loaded["truncated"] is True
    loaded = json.loads(details_json(huge))
    assert loaded["tool"] == "A" and loaded["model"].endswith("(100,000 characters)")
    assert loaded["keys"][-1].startswith("... (") and loaded["keys"][-1].endswith(" more)")


def test_provenance_says_whether_it_is_signed_and_whether_the_classifier_disagrees() -> None:
    from fakewatch.evidence import Evidence, provenance, signed

    written = analyze(png_with_text(pixels(1), {"parameters": A1111}), "png")[0]
    assert not signed(written)
    assert provenance(written, 0.014, 0.5) == ("unsigned generator parameters: AUTOMATIC1111/Forge generation "
                                               "parameters, model sd_xl_base_1.0; the classifier disagrees (p 0.01)")
    assert provenance(written, 0.9, 0.5).endswith("model sd_xl_base_1.0")  # it agrees: nothing to add
    assert provenance(written).endswith("model sd_xl_base_1.0")  # no classifier judged the picture
    credentials = Evidence("c2pa", 1, "c2pa_ai_source", "proves_ai", "C2PA c2pa.created trainedAlgorithmicMedia")
    assert signed(credentials) and provenance(credentials, 0.2, 0.5).startswith("signed C2PA credentials: C2PA")
    assert proof([written, credentials]) is credentials  # a signed proof is the one named
