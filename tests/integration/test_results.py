import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    record = json.loads(run_cli("show", str(photo)).stdout)
    assert record["path"] == str(photo)
    assert record["same_content"] == [str(tmp_path / "in" / "twin.jpg")]
    assert [entry["classifier"] for entry in record["history"]] == [stand_in_classifier.version]
    assert json.loads(run_cli("show", str(record["id"])).stdout)["path"] == str(photo)
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
