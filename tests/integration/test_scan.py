import json
import shutil
from pathlib import Path

from sqlalchemy import func, select

from fakewatch import imaging
from fakewatch.classifiers.pixel_hash import PixelHashClassifier
from fakewatch.db.session import Database
from fakewatch.db.tables import Content, Image, Verdict
from fakewatch.verdicts import decide
from tests.integration.conftest import write_photos
from tests.integration.corpus import write_bad_corpus


def _count(settings, table) -> int:  # type: ignore[no-untyped-def]
    with Database(settings.resolved_database_url).session() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_scan_records_verdicts_and_rerun_skips(tmp_path: Path, run_cli, env_settings,  # type: ignore[no-untyped-def]
                                               stand_in_classifier) -> None:
    photos = write_photos(tmp_path / "in", 30)
    result = run_cli("scan", str(tmp_path / "in"))
    assert "30 files" in result.output
    assert _count(env_settings, Verdict) == 30
    rows = [json.loads(line) for line in run_cli("results", "--format", "json").stdout.splitlines()]
    assert {row["path"] for row in rows} == {str(path) for path in photos}
    assert all(row["classifier"] == stand_in_classifier.version and row["status"] == "done" for row in rows)
    # each verdict is the classifier's answer for exactly that file's pixels, labelled by the decision rule
    classifier = PixelHashClassifier(stand_in_classifier)
    for row in rows:
        expected = classifier.probability(imaging.load_file(row["path"], classifier.spec, env_settings.limits))
        assert row["p_fake"] == round(expected, 6)
        assert row["label"] == decide(expected, classifier.threshold, env_settings.uncertain_margin).label
    assert {row["label"] for row in rows} == {"fake", "real", "uncertain"}  # 30 hashes cover all three

    with Database(env_settings.resolved_database_url).session() as session:
        before = {v.id: v.created_at for v in session.scalars(select(Verdict))}
    run_cli("scan", str(tmp_path / "in"))
    with Database(env_settings.resolved_database_url).session() as session:
        after = {v.id: v.created_at for v in session.scalars(select(Verdict))}
    assert after == before  # nothing re-classified

    run_cli("scan", "--force", str(tmp_path / "in"))
    with Database(env_settings.resolved_database_url).session() as session:
        forced = {v.id: v.created_at for v in session.scalars(select(Verdict))}
    assert set(forced) == set(before) and all(forced[key] > before[key] for key in before)


def test_same_bytes_under_two_names_are_classified_once(tmp_path: Path, run_cli, env_settings) -> None:  # type: ignore[no-untyped-def]
    (original,) = write_photos(tmp_path / "in", 1)
    shutil.copy(original, tmp_path / "in" / "copy of it.jpg")
    run_cli("scan", str(tmp_path / "in"))
    assert _count(env_settings, Image) == 2
    assert _count(env_settings, Content) == 1
    assert _count(env_settings, Verdict) == 1
    rows = [json.loads(line) for line in run_cli("results", "--format", "json").stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["label"] == rows[1]["label"] and rows[0]["sha256"] == rows[1]["sha256"]


def test_a_new_verdict_dates_every_copy_of_the_content(tmp_path: Path, run_cli, env_settings) -> None:  # type: ignore[no-untyped-def]
    (original,) = write_photos(tmp_path / "in", 1)
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(original, tmp_path / "elsewhere" / "copy.jpg")
    run_cli("scan", str(tmp_path / "in"), str(tmp_path / "elsewhere"))
    run_cli("scan", "--force", str(tmp_path / "in"))  # re-judges the content through the first copy only
    with Database(env_settings.resolved_database_url).session() as session:
        newest = session.scalar(select(func.max(Verdict.created_at)))
        stamps = {Path(path).parent.name: (status, moment) for path, status, moment in
                  session.execute(select(Image.path, Image.status, Image.classified_at))}
    assert stamps["in"][0] == stamps["elsewhere"][0] == "done"
    assert stamps["in"][1] == stamps["elsewhere"][1] == newest  # listings sort both by the new verdict


def test_bad_files_are_recorded_with_their_kind(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    expected = write_bad_corpus(tmp_path / "bad")
    result = run_cli("scan", "--format", "json", str(tmp_path / "bad"))
    rows = {Path(row["path"]).name: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == set(expected)
    for name, kind in expected.items():
        if kind is None:
            assert rows[name]["status"] == "done" and rows[name]["label"], name
        else:
            assert rows[name]["status"] == "error", name
            assert rows[name]["error_kind"] == kind, (name, rows[name])
            assert rows[name]["error"], name


def test_non_images_without_image_names_are_ignored(tmp_path: Path, run_cli, env_settings) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mixed"
    write_photos(folder, 2)
    (folder / "notes.txt").write_text("hello")
    (folder / "photo.unknown").write_bytes((folder / "img_0000.jpg").read_bytes())  # an image by content
    run_cli("scan", str(folder))
    with Database(env_settings.resolved_database_url).session() as session:
        names = {Path(path).name for path in session.scalars(select(Image.path))}
    assert names == {"img_0000.jpg", "img_0001.jpg", "photo.unknown"}


def test_setup_error_exits_nonzero(tmp_path: Path, run_cli, env) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "in", 1)
    env["FAKEWATCH_CLASSIFIER"] = "no-such-classifier"
    result = run_cli("scan", str(tmp_path / "in"), expect=2)
    assert "no-such-classifier" in result.output


def test_a_scan_in_many_chunks_settles_each_one(tmp_path: Path, env_settings) -> None:  # type: ignore[no-untyped-def]
    """The classifier works on one chunk while the next is recorded: every chunk still ends written and
    read back once, copies split across chunks get one verdict, and a broken file its error."""
    import dataclasses

    from fakewatch.intake.scan import scan
    from fakewatch.mode import open_mode

    folder = tmp_path / "in"
    photos = write_photos(folder, 13)
    shutil.copy(photos[1], folder / "zz_copy_a.jpg")  # same content as a file three chunks earlier
    shutil.copy(photos[12], folder / "zz_copy_b.jpg")  # ... and as one in its own chunk
    (folder / "zz_truncated.jpg").write_bytes(photos[0].read_bytes()[:300])
    settings = dataclasses.replace(env_settings, batch_size=4)
    progress: list[int] = []
    rows: list[dict] = []  # type: ignore[type-arg]
    with open_mode(settings) as mode:
        summary = scan(mode.intake, [folder], on_rows=rows.extend, on_progress=progress.append)
        assert not mode.dispatcher.unsettled
    assert sum(progress) == 16 and len(progress) == 4 and summary.files == 16
    assert summary.by_status == {"done": 15, "error": 1} and summary.by_error == {"corrupt": 1}
    assert sorted(Path(row["path"]).name for row in rows) == sorted(path.name for path in folder.iterdir())
    assert all(row["label"] and row["classifier"] for row in rows if row["status"] == "done")
    by_name = {Path(row["path"]).name: row for row in rows}
    assert by_name["zz_copy_a.jpg"]["p_fake"] == by_name["img_0001.jpg"]["p_fake"]
    assert _count(env_settings, Verdict) == 13  # one per content, the copies included
    with Database(env_settings.resolved_database_url).session() as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.status == "pending")) == 0


def test_a_summary_counted_by_the_database_matches_one_read_from_every_row(  # type: ignore[no-untyped-def]
        tmp_path: Path, env_settings) -> None:
    """Without ``every_row`` the summary's counts come from the database, grouped, and only the rows of
    files with errors are read: the same summary as reading every row back."""
    import dataclasses

    from fakewatch.intake.scan import scan
    from fakewatch.mode import open_mode

    folder = tmp_path / "in"
    photos = write_photos(folder, 9)
    (folder / "zz_truncated.jpg").write_bytes(photos[0].read_bytes()[:300])
    (folder / "zz_empty.jpg").write_bytes(b"")
    summaries, shown = [], []
    for every_row in (True, False):
        settings = dataclasses.replace(env_settings, batch_size=4, home=str(tmp_path / f"home-{every_row}"))
        rows: list[dict] = []  # type: ignore[type-arg]
        with open_mode(settings) as mode:
            summaries.append(scan(mode.intake, [folder], on_rows=rows.extend, every_row=every_row))
        shown.append(sorted(Path(row["path"]).name for row in rows))
    full, counted = summaries
    assert (counted.files, counted.by_status, counted.by_error, counted.by_label) == \
        (full.files, full.by_status, full.by_error, full.by_label)
    assert counted.files == 11 and sum(counted.by_label.values()) == 9 and len(counted.by_error) == 2
    assert shown[1] == ["zz_empty.jpg", "zz_truncated.jpg"] and len(shown[0]) == 11


def test_a_scan_keeps_two_chunks_with_the_classifier_within_its_memory_bound(  # type: ignore[no-untyped-def]
        tmp_path: Path, env_settings, monkeypatch) -> None:
    """While one chunk's verdicts are written, the next two are already with the classifier (its lanes
    never wait for the writer); a chunk whose crops would pass the queued-memory bound waits alone."""
    import dataclasses

    from fakewatch.intake import embedded as inprocess
    from fakewatch.intake.scan import scan
    from fakewatch.mode import open_mode

    folder = tmp_path / "in"
    write_photos(folder, 16)
    settings = dataclasses.replace(env_settings, batch_size=4)
    for bound, most in ((inprocess.QUEUED_VALUES, 8), (0, 4)):
        monkeypatch.setattr(inprocess, "QUEUED_VALUES", bound)
        with open_mode(dataclasses.replace(settings, home=tmp_path / f"home-{bound}")) as mode:
            waiting: list[int] = []  # after each chunk read back: ids submitted and not yet written
            summary = scan(mode.intake, [folder], on_progress=lambda done, mode=mode, waiting=waiting: waiting.append(
                len(mode.dispatcher.unsettled)))
        assert summary.by_status == {"done": 16}
        assert max(waiting) == most, (bound, waiting)
