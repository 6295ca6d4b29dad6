"""Hostile folders: special files, links out of the folder, names no terminal should see raw, any bytes
as a name, decoder chatter and a light fuzzing run; in `scan`, in the watcher and in every output."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path

from sqlalchemy import select

from fakewatch.db.session import Database
from fakewatch.db.tables import Image
from fakewatch.imaging import encode_jpeg
from fakewatch.mode import open_mode
from fakewatch.names import to_fs
from fakewatch.watcher.observer import Watcher
from tests.hostile import write_hostile_corpus, write_mutations
from tests.integration.test_watch import wait_for

RAW_CONTROL = ("\x1b", "\x07", "\r", "\u202e")  # escape sequences, bell, carriage return, RTL override


def _by_name(rows: list[dict]) -> dict[bytes, dict]:  # type: ignore[type-arg]
    return {os.fsencode(os.path.basename(to_fs(row["path"]))): row for row in rows}


def _check(rows: dict[bytes, dict], expected: dict[bytes, str | None]) -> None:  # type: ignore[type-arg]
    assert set(rows) == {name for name, outcome in expected.items() if outcome is not None}
    for name, outcome in expected.items():
        if outcome is None:
            continue
        row = rows[name]
        if outcome == "done":
            assert row["status"] == "done" and row["label"] and row["classifier"], (name, row)
        else:
            assert (row["status"], row["error_kind"]) == ("error", outcome), (name, row)
            assert row["error"] and row["p_fake"] is None, name


def test_scan_records_every_hostile_entry_with_its_kind(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    expected = write_hostile_corpus(tmp_path / "in", tmp_path / "outside")
    assert len(expected) >= 25
    result = run_cli("scan", "--format", "json", str(tmp_path / "in"))  # a FIFO read would hang here
    rows = _by_name([json.loads(line) for line in result.stdout.splitlines()])
    _check(rows, expected)
    assert "root:" not in result.output  # /etc/passwd was never read, let alone shown
    sha_of_passwd = rows[b"passwd.jpg"]["sha256"]
    assert sha_of_passwd is None
    warned = rows[b"stray-bytes.jpg"]
    assert warned["warnings"] and "extraneous bytes" in warned["warnings"]

    listing = run_cli("results")
    shown_text = run_cli("-q", "scan", "--force", str(tmp_path / "in")).output + listing.output
    shown_text += run_cli("results", "--format", "paths").output
    for character in RAW_CONTROL:
        assert character not in shown_text, repr(character)
    assert "\\x1b]0;owned\\x07" in listing.output and "x\\xff\\xfe-latin1" in listing.output
    for line in run_cli("results", "--format", "json").stdout.splitlines():
        json.loads(line)  # every line stays valid JSON
    table = list(csv.DictReader(io.StringIO(run_cli("results", "--format", "csv").stdout)))
    formula = [row["path"] for row in table if "cmd|" in row["path"]]
    assert formula and all(not path.startswith(("=", "+", "-", "@")) for path in formula)


def test_names_that_are_not_utf8_round_trip_through_the_database(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "archive"
    folder.mkdir()
    source = write_hostile_corpus(tmp_path / "corpus", tmp_path / "outside")  # for one real photo's bytes
    assert source
    photo = (tmp_path / "corpus" / "cmyk.jpg").read_bytes()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9 \xff.jpg")
    with open(raw, "wb") as handle:
        handle.write(photo)
    run_cli("scan", str(folder))
    (row,) = [json.loads(line) for line in run_cli("results", "--format", "json").stdout.splitlines()]
    assert os.fsencode(to_fs(row["path"])) == raw and row["status"] == "done"
    run_cli("label", row["path"], "--fake")  # found again by its stored name
    shown = run_cli("show", "--json", str(row["id"])).stdout
    assert json.loads(shown)["labels"][0]["label"] == "fake"


def test_the_watcher_survives_a_hostile_drop_folder(tmp_path: Path, env_settings) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "drop"
    folder.mkdir()
    mode = open_mode(env_settings.replace(stability_delay=0.3, rescan_interval=0))
    watcher = Watcher(mode.intake, [str(folder)])
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.started.wait(30)
        expected = write_hostile_corpus(folder, tmp_path / "outside")
        good = write_mutations(tmp_path / "unused", 0)
        assert not good

        def recorded() -> dict[bytes, dict]:  # type: ignore[type-arg]
            with mode.database.session() as session:
                images = session.scalars(select(Image)).all()
                return {os.fsencode(os.path.basename(to_fs(image.path))): {
                    "status": image.status, "error_kind": image.error_kind} for image in images}

        files = {name for name, outcome in expected.items() if outcome not in (None, "outside_root", "symlink_loop",
                                                                                  "unreadable", "directory")}
        wait_for(lambda: files <= set(recorded()) and all(
            recorded()[name]["status"] != "pending" for name in files), timeout=60)
        watcher.rescan()  # links and folders raise no content events: the rescan covers them
        rows = recorded()
        for name, outcome in expected.items():
            if outcome is None:
                assert name not in rows, name
            elif outcome == "done":
                assert rows[name]["status"] == "done", (name, rows[name])
            else:
                assert rows[name]["error_kind"] == outcome, (name, rows[name])
        assert thread.is_alive()
    finally:
        watcher.stop.set()
        thread.join(20)
        mode.close()
    assert not thread.is_alive()


def test_light_fuzzing_run_records_every_file(tmp_path: Path, run_cli, env_settings) -> None:  # type: ignore[no-untyped-def]
    paths = write_mutations(tmp_path / "fuzz", 300, seed=11)
    result = run_cli("scan", "--format", "json", str(tmp_path / "fuzz"))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(paths)
    kinds = {row["error_kind"] for row in rows if row["status"] == "error"}
    assert kinds <= {"corrupt", "unsupported", "too_large", "empty"}
    assert all(row["status"] in ("done", "error") for row in rows)
    assert sum(row["status"] == "done" for row in rows) > 30  # light damage still classifies
    with Database(env_settings.resolved_database_url).session() as session:
        assert len(session.scalars(select(Image.id)).all()) == len(paths)


def test_decoder_messages_land_on_the_file_that_caused_them(tmp_path: Path, run_cli, capfd) -> None:  # type: ignore[no-untyped-def]
    """Thumbnails are decoded with the decoder's messages captured once per chunk; when one file in a chunk
    makes the decoder speak, its message is recorded on that file alone, and a damaged one is an error."""
    import cv2
    import numpy as np

    folder = tmp_path / "thumbs"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for index in range(40):
        rgb = cv2.GaussianBlur(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), (3, 3), 1)
        (folder / f"clean-{index:02d}.jpg").write_bytes(cv2.imencode(".jpg", rgb)[1].tobytes())
    photo = (folder / "clean-00.jpg").read_bytes()
    (folder / "m-chatty.jpg").write_bytes(photo[:-2] + b"\0" * 10 + photo[-2:])  # stray bytes: a warning
    big = cv2.GaussianBlur(np.random.default_rng(4).integers(0, 255, (128, 128, 3), dtype=np.uint8), (9, 9), 3)
    damaged = bytearray(encode_jpeg(big, 90))
    middle = (damaged.index(b"\xff\xda") + len(damaged)) // 2
    damaged[middle:middle + 200] = b"\xfe" * 200
    (folder / "m-damaged.jpg").write_bytes(bytes(damaged))

    result = run_cli("scan", "--format", "json", str(folder))
    rows = {os.path.basename(to_fs(row["path"])): row for row in map(json.loads, result.stdout.splitlines())}
    assert len(rows) == 42
    assert "extraneous bytes" in (rows.pop("m-chatty.jpg")["warnings"] or "")
    damaged_row = rows.pop("m-damaged.jpg")
    assert (damaged_row["status"], damaged_row["error_kind"]) == ("error", "corrupt")
    assert "Corrupt JPEG data" in damaged_row["error"]
    assert all(row["status"] == "done" and not row["warnings"] for row in rows.values()), rows
    assert "Corrupt JPEG" not in capfd.readouterr().err  # captured, never printed


def test_metadata_bombs_are_classified_with_their_damage_on_record(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """EXIF directories that overlap and point at each other, and compressed text that inflates a
    thousandfold: the reading stops at its limits, the pixels still get a verdict."""
    from tests.hostile import exif_ifd_bomb, png_text_bomb

    folder = tmp_path / "bombs"
    folder.mkdir()
    (folder / "exif-web.jpg").write_bytes(exif_ifd_bomb(140_000))
    (folder / "xmp-itxt.png").write_bytes(png_text_bomb(12, xmp=True))
    (folder / "ztxt.png").write_bytes(png_text_bomb(12, xmp=False))
    result = run_cli("scan", "--format", "json", str(folder))
    rows = {os.path.basename(to_fs(row["path"])): row for row in map(json.loads, result.stdout.splitlines())}
    assert len(rows) == 3
    for name, row in rows.items():
        assert row["status"] == "done" and row["label"] and row["p_fake"] is not None, (name, row)
        damaged = [item for item in row["evidence"] if item["kind"] == "metadata_damaged"]
        assert damaged and damaged[0]["strength"] == "none", (name, row["evidence"])
    assert "EXIF directory entries" in rows["exif-web.jpg"]["evidence"][0]["summary"]
    assert "inflates beyond" in rows["ztxt.png"]["evidence"][0]["summary"]
    listed = run_cli("results", "--evidence", "metadata_damaged", "--format", "paths").output.split()
    assert len(listed) == 3


def test_error_messages_name_the_file_once(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """The row names the file; its recorded message says what went wrong, so a line that shows both
    (`scan`, `results`) names the file once."""
    expected = write_hostile_corpus(tmp_path / "in", tmp_path / "outside")
    result = run_cli("scan", "--format", "json", str(tmp_path / "in"))
    rows = _by_name([json.loads(line) for line in result.stdout.splitlines()])
    errors = {name: row for name, row in rows.items() if expected[name] not in (None, "done")}
    assert {row["error_kind"] for row in errors.values()} >= {"corrupt", "unreadable", "symlink_loop", "fifo",
                                                               "outside_root", "too_large", "directory"}
    for name, row in errors.items():
        assert row["error"] and str(tmp_path) not in row["error"].replace(str(tmp_path / "outside"), ""), row
        assert os.fsdecode(name) not in row["error"], row
    assert rows[b"truncated.jpg"]["error"].startswith("truncated JPEG")
    listing = run_cli("results", "--status", "error").output
    truncated = next(line for line in listing.splitlines() if "truncated.jpg" in line)
    assert truncated.count("truncated.jpg") == 1, truncated
