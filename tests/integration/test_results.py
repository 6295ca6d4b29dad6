import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from fakewatch.cli import cli
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Verdict
from tests.integration.conftest import write_photos
from tests.integration.corpus import write_bad_corpus


def _json(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_filters_and_formats(tmp_path: Path, run_cli, stand_in_classifier) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "a", 10)
    write_photos(tmp_path / "b", 6, seed=1, start=100)
    write_bad_corpus(tmp_path / "bad")
    run_cli("scan", str(tmp_path))
    everything = _json(run_cli("results", "--format", "json"))
    assert len(everything) == 16 + 10

    for label in ("fake", "real", "uncertain"):
        chosen = _json(run_cli("results", "--label", label, "--format", "json"))
        assert all(row["label"] == label for row in chosen)
        assert len(chosen) == sum(row["label"] == label for row in everything)
    common = max(("fake", "real"), key=lambda label: sum(row["label"] == label for row in everything))
    fakes = _json(run_cli("results", "--label", common, "--format", "json"))
    assert fakes  # the generated photos are easy: most get a definite label

    confident = _json(run_cli("results", "--min-confidence", "0.8", "--format", "json"))
    assert all(row["confidence"] >= 0.8 for row in confident)
    assert len(confident) == sum((row["confidence"] or 0) >= 0.8 for row in everything)

    only_b = _json(run_cli("results", "--path", f"{tmp_path}/b/*", "--format", "json"))
    assert len(only_b) == 6 and all("/b/" in row["path"] for row in only_b)

    errors = _json(run_cli("results", "--status", "error", "--format", "json"))
    assert errors and all(row["status"] == "error" and row["error_kind"] for row in errors)

    assert len(_json(run_cli("results", "--classifier", stand_in_classifier.version, "--format", "json"))) == 16 + 4
    assert _json(run_cli("results", "--classifier", "someone-else", "--format", "json")) == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _json(run_cli("results", "--since", future, "--format", "json")) == []
    assert len(_json(run_cli("results", "--since", "1h", "--format", "json"))) == 16 + 4

    paths = run_cli("results", "--label", common, "--format", "paths").stdout.splitlines()
    assert paths == [row["path"] for row in fakes]
    table = list(csv.DictReader(io.StringIO(run_cli("results", "--format", "csv").stdout)))
    assert len(table) == 26 and {"path", "sha256", "label", "p_fake", "classifier", "status", "error"} <= set(table[0])
    text = run_cli("results", "--limit", "3").stdout.splitlines()
    assert text[0].split()[:3] == ["ID", "LABEL", "P_FAKE"] and len(text) == 4

    # newest verdict first
    stamps = [row["classified_at"] for row in everything if row["classified_at"]]
    assert stamps == sorted(stamps, reverse=True)


def test_show_and_stats(tmp_path: Path, run_cli, stand_in_classifier) -> None:  # type: ignore[no-untyped-def]
    (photo,) = write_photos(tmp_path / "in", 1)
    (tmp_path / "in" / "twin.jpg").write_bytes(photo.read_bytes())
    run_cli("scan", str(tmp_path / "in"))
    record = json.loads(run_cli("show", "--json", str(photo)).stdout)
    assert record["path"] == str(photo)
    assert record["same_content"] == [str(tmp_path / "in" / "twin.jpg")]
    assert [entry["classifier"] for entry in record["history"]] == [stand_in_classifier.version]
    assert json.loads(run_cli("show", "--json", str(record["id"])).stdout)["path"] == str(photo)
    summary = run_cli("show", str(record["id"])).stdout
    assert summary.startswith(f"image {record['id']}: {photo}\n")
    assert f"classifier    {stand_in_classifier.version}" in summary and "same content (1):" in summary
    run_cli("show", str(tmp_path / "unknown.jpg"), expect=2)
    stats = json.loads(run_cli("stats", "--format", "json").stdout)
    assert stats["images"] == 2 and stats["contents"] == 1 and stats["by_status"] == {"done": 2}


def test_pages_with_after_add_up_to_the_whole_listing(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    write_photos(tmp_path / "a", 12)
    run_cli("scan", str(tmp_path / "a"))
    write_photos(tmp_path / "b", 9, seed=4, start=200)
    run_cli("scan", str(tmp_path / "b"))  # a second, later batch of verdicts
    write_bad_corpus(tmp_path / "bad")  # errors have no verdict: they come last
    run_cli("scan", str(tmp_path / "bad"))
    everything = [row["id"] for row in _json(run_cli("results", "--format", "json"))]
    pages: list[int] = []
    after: list[str] = []
    while True:
        page = [row["id"] for row in _json(run_cli("results", "--limit", "5", *after, "--format", "json"))]
        if not page:
            break
        pages += page
        after = ["--after", str(page[-1])]
    assert pages == everything and len(everything) == len(set(everything)) == 12 + 9 + 10
    fakes = [row["id"] for row in _json(run_cli("results", "--label", "fake", "--format", "json"))]
    first = _json(run_cli("results", "--label", "fake", "--limit", "2", "--format", "json"))
    rest = _json(run_cli("results", "--label", "fake", "--after", str(first[-1]["id"]), "--format", "json"))
    assert [row["id"] for row in first + rest] == fakes


def _out_of_domain(settings, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Record ``path``'s verdict as the classifier step records an image no classifier covers."""
    with Database(settings.resolved_database_url).session() as session, session.begin():
        content_id = session.scalar(select(Image.content_id).where(Image.path == str(path)))
        session.execute(update(Verdict).where(Verdict.content_id == content_id).values(
            classifier="none", label="uncertain", p_fake=0.5, confidence=0.0, threshold=0.5, reason="out_of_domain",
            reason_detail="100x100 px: no active classifier covers it"))


def test_out_of_domain_images_are_listed_and_shown_as_not_judged(tmp_path: Path, run_cli,  # type: ignore[no-untyped-def]
                                                                  env_settings) -> None:
    photos = write_photos(tmp_path / "in", 3)
    run_cli("scan", str(tmp_path / "in"))
    _out_of_domain(env_settings, photos[1])
    (row,) = _json(run_cli("results", "--reason", "out_of_domain", "--format", "json"))
    assert row["path"] == str(photos[1]) and row["label"] == "uncertain" and row["reason"] == "out_of_domain"
    assert (row["p_fake"], row["confidence"], row["threshold"]) == (None, None, None)
    assert len(_json(run_cli("results", "--reason", "classifier", "--format", "json"))) == 2
    table = run_cli("results", "--reason", "out_of_domain").stdout.splitlines()
    assert table[1].split()[1:4] == ["uncertain", "-", "-"] and "[out_of_domain: 100x100 px" in table[1]
    record = json.loads(run_cli("show", "--json", str(photos[1])).stdout)
    assert record["p_fake"] is None and record["history"][0]["p_fake"] is None
    summary = run_cli("show", str(photos[1])).stdout
    assert "not judged" in summary and "0.500" not in summary and "0.00" not in summary
    rescanned = run_cli("rescan", "--reason", "out_of_domain").stdout
    assert rescanned.startswith("1 images classified")


def test_results_table_columns_fit_the_longest_classifier_name(tmp_path: Path, run_cli,  # type: ignore[no-untyped-def]
                                                                env_settings) -> None:
    photos = write_photos(tmp_path / "in", 2)
    run_cli("scan", str(tmp_path / "in"))
    with Database(env_settings.resolved_database_url).session() as session, session.begin():
        content_id = session.scalar(select(Image.content_id).where(Image.path == str(photos[0])))
        session.execute(update(Verdict).where(Verdict.content_id == content_id).values(
            classifier="efficientnet-lite0-20261204-122820-refreshed"))
    lines = run_cli("results").stdout.splitlines()
    starts = {line.index(str(tmp_path)) for line in lines[1:]}
    assert len(starts) == 1 and lines[0].index("PATH") == starts.pop()


@pytest.mark.parametrize("arguments", [["results", "--min-confidence", "0.3"], ["results", "--min-confidence", "1.5"],
                                       ["rescan", "--min-confidence", "0.2"], ["results", "--reason", "nonsense"]])
def test_filter_values_out_of_range_are_usage_errors(env, arguments: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, arguments, env=env, obj={})
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_a_label_is_fake_or_real_not_both(tmp_path: Path, run_cli, env) -> None:  # type: ignore[no-untyped-def]
    (photo,) = write_photos(tmp_path / "in", 1)
    run_cli("scan", str(tmp_path / "in"))
    both = CliRunner().invoke(cli, ["label", str(photo), "--fake", "--real"], env=env, obj={})
    assert both.exit_code == 2 and "--fake and --real cannot go together" in both.output
    neither = CliRunner().invoke(cli, ["label", str(photo)], env=env, obj={})
    assert neither.exit_code == 2
    assert json.loads(run_cli("show", "--json", str(photo)).stdout)["labels"] == []
    run_cli("label", str(photo), "--real", "--author", "ana")
    assert [item["label"] for item in json.loads(run_cli("show", "--json", str(photo)).stdout)["labels"]] == ["real"]


def test_show_label_and_explain_take_a_path_that_is_not_utf8(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (photo,) = write_photos(tmp_path / "in", 1)
    odd = os.fsdecode(os.fsencode(tmp_path / "in") + b"/caf\xe9.jpg")  # Latin-1 bytes: not UTF-8
    os.rename(photo, odd)
    run_cli("scan", str(tmp_path / "in"))
    escaped = f"{tmp_path / 'in'}/caf\\xe9.jpg"
    assert run_cli("show", odd).stdout.startswith(f"image 1: {escaped}\n")
    assert json.loads(run_cli("show", "--json", odd).stdout)["path"] == escaped
    assert run_cli("show", escaped).stdout.startswith("image 1:")  # the form listings print
    assert run_cli("label", odd, "--fake").stdout.startswith(f"labelled {escaped} as fake")
    assert run_cli("explain", odd, "--out", str(tmp_path / "map.png")).stdout.startswith("wrote ")


def test_stats_results_and_counts_count_labels_the_same_way(tmp_path: Path, run_cli,  # type: ignore[no-untyped-def]
                                                           env_settings) -> None:
    from fakewatch.db.results import ResultFilter, label_counts

    photos = write_photos(tmp_path / "in", 8)
    (tmp_path / "in" / "twin.jpg").write_bytes(photos[0].read_bytes())  # one content under two paths
    run_cli("scan", str(tmp_path / "in"))
    with Database(env_settings.resolved_database_url).session() as session, session.begin():
        ids = {path: session.scalar(select(Image.content_id).where(Image.path == str(path))) for path in photos}
        session.execute(update(Image).where(Image.path == str(photos[2])).values(deleted_at=datetime.now(UTC)))
        label = session.scalar(select(Verdict.label).where(Verdict.content_id == ids[photos[3]]))
        session.add(Verdict(content_id=ids[photos[3]], classifier="newer", label="real" if label == "fake" else "fake",
                            p_fake=0.5, confidence=0.9, threshold=0.5, elapsed_ms=1.0, host="h",
                            created_at=datetime.now(UTC) + timedelta(minutes=1)))  # supersedes the scan's
    listed = {label: len(_json(run_cli("results", "--label", label, "--format", "json")))
              for label in ("fake", "real", "uncertain")}
    assert sum(listed.values()) == 8  # 9 files, one deleted
    stats = json.loads(run_cli("stats", "--format", "json").stdout)
    assert stats["by_label"] == {label: count for label, count in listed.items() if count}
    with Database(env_settings.resolved_database_url).session() as session:
        fast = label_counts(session, ResultFilter())
        assert fast == label_counts(session, ResultFilter(min_confidence=0.5))  # found verdict by verdict
        assert fast == stats["by_label"]
        session.commit()
        with session.begin():  # a re-scan that replaces a verdict moves its images to the new label
            session.execute(update(Verdict).where(Verdict.classifier == "newer").values(label="uncertain"))
        moved = label_counts(session, ResultFilter())
        assert moved == label_counts(session, ResultFilter(min_confidence=0.5)) and moved.get("uncertain", 0) >= 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_database_keeps_each_images_current_label(tmp_path: Path, backend: str) -> None:
    from contextlib import nullcontext

    from fakewatch.db.results import ResultFilter, label_counts
    from fakewatch.db.session import make_engine, upgrade
    from fakewatch.db.tables import Content
    from tests.integration.services import throwaway_postgres

    place = throwaway_postgres() if backend == "postgresql" else nullcontext(f"sqlite:///{tmp_path / 'x.db'}")
    with place as url:
        upgrade(make_engine(url))
        database = Database(url)
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        with database.session() as session, session.begin():
            session.add_all([Content(id=cid, sha256=f"{cid:064x}", size=1, created_at=moment) for cid in (1, 2)])
            session.flush()
            session.add_all([Image(id=i, path=f"/x/{i}.jpg", content_id=c, status="done", first_seen=moment,
                                   last_seen=moment) for i, c in ((1, 1), (2, 1), (3, 2))])
            session.flush()
            session.add(Verdict(content_id=1, classifier="v1", label="fake", p_fake=0.9, confidence=0.9,
                                threshold=0.5, elapsed_ms=1, host="h", created_at=moment))
        with database.session() as session:
            assert label_counts(session) == {"fake": 2, "unclassified": 1}
            session.commit()
            with session.begin():
                session.add(Verdict(content_id=1, classifier="v2", label="real", p_fake=0.1, confidence=0.9,
                                    threshold=0.5, elapsed_ms=1, host="h", created_at=moment + timedelta(hours=1)))
                session.execute(update(Image).where(Image.id == 3).values(content_id=1))
            assert label_counts(session) == {"real": 3}
            assert label_counts(session) == label_counts(session, ResultFilter(min_confidence=0.5))
        database.dispose()


def _recount(session) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the kept counts should say, counted row by row."""
    from sqlalchemy import func

    from fakewatch.db.tables import Content

    images = {(deleted, status, error_kind, label): n for deleted, status, error_kind, label, n in session.execute(
        select(Image.deleted_at.is_not(None), Image.status, Image.error_kind, Image.verdict_label, func.count())
        .group_by(Image.deleted_at.is_not(None), Image.status, Image.error_kind, Image.verdict_label)).all()}
    return {"images": images, "contents": session.scalar(select(func.count()).select_from(Content)),
            "verdicts": dict(session.execute(select(Verdict.classifier, func.count())
                                             .group_by(Verdict.classifier)).all())}


def _kept(session) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from fakewatch.db import counts

    groups = counts.image_groups(session, include_deleted=True)
    return {"images": {(g.deleted, g.status, g.error_kind, g.label): g.count for g in groups},
            "contents": counts.contents(session), "verdicts": counts.verdicts_by_classifier(session)}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kept_counts_equal_a_recount_after_mixed_writes(tmp_path: Path, backend: str) -> None:
    from contextlib import nullcontext

    from sqlalchemy import delete, insert

    from fakewatch.db.common import upsert
    from fakewatch.db.results import ResultFilter, label_counts, stats
    from fakewatch.db.session import make_engine, upgrade
    from fakewatch.db.tables import Content
    from tests.integration.services import throwaway_postgres

    place = throwaway_postgres() if backend == "postgresql" else nullcontext(f"sqlite:///{tmp_path / 'x.db'}")
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    def verdict(content_id: int, classifier: str, label: str, minutes: int = 0) -> dict[str, object]:
        return {"content_id": content_id, "classifier": classifier, "label": label, "p_fake": 0.5, "confidence": 0.9,
                "threshold": 0.5, "elapsed_ms": 1.0, "host": "h", "created_at": moment + timedelta(minutes=minutes)}

    def image(image_id: int, content_id: int | None, status: str = "pending", **more: object) -> dict[str, object]:
        return {"id": image_id, "path": f"/x/{image_id}.jpg", "content_id": content_id, "size": 1, "mtime": 0.0,
                "status": status, "error_kind": None, "error_message": None, "first_seen": moment,
                "last_seen": moment, "queued_at": None, "deleted_at": None, "classified_at": None, **more}

    steps = [
        lambda s: s.execute(insert(Content), [{"id": c, "sha256": f"{c:064x}", "size": 1, "created_at": moment}
                                              for c in range(1, 10)]),
        lambda s: s.execute(insert(Verdict), [verdict(c, "v1", "fake" if c % 2 else "real") for c in (1, 2, 3)]),
        # a scan's upsert: new rows, some of them on already judged contents, and an unreadable file
        lambda s: upsert(s, Image.__table__, [image(i, (i - 1) % 8 + 1) for i in range(1, 13)]
                         + [image(13, None, "error", error_kind="corrupt")], keys=["path"]),
        lambda s: s.execute(update(Image).where(Image.id <= 6).values(status="done")),
        # a rescan by a newer classifier: one verdict statement moves the images of three contents
        lambda s: s.execute(insert(Verdict), [verdict(c, "v2", "uncertain", 5) for c in (1, 4, 5)]),
        lambda s: s.execute(update(Verdict).where(Verdict.content_id == 4).values(label="fake")),
        lambda s: s.execute(update(Verdict).where(Verdict.content_id == 2, Verdict.classifier == "v1")
                            .values(classifier="v3")),
        # the same paths recorded again: some change status, content or errors, one comes back deleted
        lambda s: upsert(s, Image.__table__, [image(2, 6, "done"), image(7, 1, "error", error_kind="too_large"),
                                              image(14, 2, "skipped", deleted_at=moment)],
                         keys=["path"], update=("content_id", "status", "error_kind", "deleted_at")),
        lambda s: s.execute(update(Image).where(Image.id.in_([3, 9, 11])).values(deleted_at=moment,
                                                                                   status="skipped")),
        lambda s: s.execute(update(Image).where(Image.id == 9).values(deleted_at=None)),
        lambda s: s.execute(update(Image).values(last_seen=moment + timedelta(days=1))),  # no group changes
        lambda s: s.execute(delete(Verdict).where(Verdict.content_id == 1, Verdict.classifier == "v2")),
        lambda s: s.execute(delete(Image).where(Image.id.in_([4, 13]))),
        lambda s: s.execute(delete(Verdict).where(Verdict.content_id == 3)),
        lambda s: s.execute(delete(Content).where(Content.id == 9)),
    ]
    with place as url:
        upgrade(make_engine(url))
        database = Database(url)
        for step in steps:
            with database.session() as session, session.begin():
                step(session)
            with database.session() as session:
                assert _kept(session) == _recount(session)
        with database.session() as session:  # the same labels as a query that finds each image's verdict
            for status in (None, "done"):
                kept = label_counts(session, ResultFilter(status=status))
                kept.pop("unclassified", None)
                assert kept == label_counts(session, ResultFilter(status=status, min_confidence=0.0))
            summary = stats(session)
            assert summary["contents"] == 8 and summary["verdicts_by_classifier"] == {"v1": 1, "v2": 2, "v3": 1}
            assert summary["deleted"] == 3 and summary["by_error_kind"] == {"too_large": 1}
        with database.session() as session:  # a writer that rolls back leaves the counts as they were
            before = _kept(session)
            session.execute(update(Image).values(status="error", error_kind="corrupt"))
            session.rollback()
            assert _kept(session) == before
        database.dispose()
