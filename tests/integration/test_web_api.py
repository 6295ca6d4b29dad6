"""The HTTP API and the pages' server side (`fakewatch serve`), embedded mode, through Starlette's client."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from fakewatch.cli import cli
from fakewatch.config import Settings, load_settings
from fakewatch.db.session import Database
from fakewatch.db.tables import Image, Label
from fakewatch.web.app import create_app
from tests.conftest import noisy_image, smooth_image, write_image
from tests.hostile import png_bomb
from tests.integration.conftest import write_photos

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def web_settings(tmp_path: Path, stand_in_classifier, other_stand_in) -> Settings:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    for version in (stand_in_classifier, other_stand_in):
        shutil.copytree(version.path, home / "classifiers" / version.version)
        (home / "classifiers" / version.version / "training.png").write_bytes(b"\x89PNG\r\n\x1a\n plot")
    settings = load_settings({"home": str(home), "max_file_bytes": 300_000}, env={})
    from fakewatch.registry import Registry

    Registry(settings).activate(stand_in_classifier.version)
    return settings


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings, TOKEN), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def upload(client: TestClient, *files: tuple[str, bytes], headers: dict[str, str] | None = None) -> Any:
    return client.post("/api/v1/scan", files=[("files", (name, data, "application/octet-stream"))
                                               for name, data in files], headers=AUTH if headers is None else headers)


def photo_bytes(tmp_path: Path, seed: int, size: int = 64) -> bytes:
    maker = noisy_image if size <= 128 else smooth_image  # large ones smooth, to stay under max_file_bytes
    return write_image(tmp_path / f"photo{seed}.jpg", maker(np.random.default_rng(seed), size),
                       quality=90).read_bytes()


def test_every_request_needs_the_token(client: TestClient) -> None:
    assert client.get("/api/v1/healthz").json() == {"status": "ok", "database": "ok"}  # open: for probes
    for path in ("/api/v1/results", "/api/v1/status", "/api/v1/metrics", "/api/v1/classifiers", "/results",
                 "/check", "/api/v1/images/1/thumbnail"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        assert client.get(path, headers=AUTH).status_code in (200, 404), path
    assert upload(client, ("a.jpg", b"x"), headers={}).status_code == 401
    assert client.get("/login?token=wrong").status_code == 401
    assert "fakewatch_session" not in client.cookies
    answer = client.get(f"/login?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 303 and "HttpOnly" in answer.headers["set-cookie"]
    assert "SameSite=strict" in answer.headers["set-cookie"]
    assert client.get("/results").status_code == 200  # the cookie now


def test_other_host_names_are_refused_and_headers_are_strict(client: TestClient) -> None:
    for host in ("evil.example", "127.0.0.1.evil.example", "attacker:8000"):
        assert client.get("/api/v1/results", headers={**AUTH, "host": host}).status_code == 421
    response = client.get("/api/v1/results", headers={**AUTH, "host": "localhost:8000"})
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_serving_beyond_loopback_needs_a_configured_token(tmp_path: Path) -> None:
    env = {"FAKEWATCH_HOME": str(tmp_path), "FAKEWATCH_API_TOKEN": "", "FAKEWATCH_CONFIG": ""}
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], obj={}, env=env)
    assert result.exit_code == 2 and "FAKEWATCH_API_TOKEN" in result.output


def test_upload_classifies_once_per_content_and_names_never_become_paths(client: TestClient, tmp_path: Path,
                                                                        web_settings: Settings) -> None:
    data = photo_bytes(tmp_path, 1)
    first = upload(client, ("../../../../tmp/evil.jpg", data), ("second.jpg", photo_bytes(tmp_path, 2)))
    assert first.status_code == 200
    rows = first.json()["results"]
    assert [row["status"] for row in rows] == ["done", "done"] and first.json()["mode"] == "embedded"
    assert rows[0]["name"] == "../../../../tmp/evil.jpg" and rows[0]["classifier"] == "hash-a"
    stored = Path(rows[0]["path"])
    assert stored.is_relative_to(web_settings.uploads_path) and stored.stem == rows[0]["sha256"]
    assert not Path("/tmp/evil.jpg").exists()
    again = upload(client, ("renamed.jpg", data)).json()["results"][0]
    assert again["id"] == rows[0]["id"]  # the same bytes are one image
    with Database(web_settings.resolved_database_url).session() as session:
        assert len(list(session.scalars(select(Image.id)))) == 2
    assert sum(1 for path in web_settings.uploads_path.rglob("*") if path.is_file()) == 2


def test_bad_uploads_are_refused_with_the_reason(client: TestClient, tmp_path: Path) -> None:
    whole = photo_bytes(tmp_path, 3)
    cases = {"empty.jpg": (b"", 422, "empty"), "notes.png": (b"just some text\n" * 10, 415, "unsupported"),
             "cut.jpg": (whole[: len(whole) // 2], 422, "corrupt"),
             "bomb.png": (png_bomb(60000, 60000), 413, "too_large"),
             "huge.jpg": (whole + b"\0" * 300_001, 413, "too_large")}
    for name, (data, status, kind) in cases.items():
        response = upload(client, (name, data))
        assert response.status_code == status, (name, response.text)
        row = response.json()["results"][0]
        assert row["status"] == "refused" and row["error_kind"] == kind and name in row["error"]
    mixed = upload(client, ("good.jpg", whole), ("bad.txt", b"text")).json()["results"]
    assert [row["status"] for row in mixed] == ["done", "refused"]
    too_big = client.post("/api/v1/scan", content=b"x" * 10, headers={**AUTH, "content-length": str(10 ** 12),
                                                                      "content-type": "multipart/form-data; b=x"})
    assert too_big.status_code == 413
    assert client.post("/api/v1/scan", headers=AUTH).status_code in (400, 422)


def test_results_filters_pages_counts_and_exports(client: TestClient, tmp_path: Path) -> None:
    upload(client, *[(f"p{seed}.jpg", photo_bytes(tmp_path, seed)) for seed in range(12)])
    every = client.get("/api/v1/results?limit=1000", headers=AUTH).json()["results"]
    assert len(every) == 12
    labels = {row["label"] for row in every}
    fakes = client.get("/api/v1/results?label=fake", headers=AUTH).json()["results"]
    assert all(row["label"] == "fake" for row in fakes)
    assert len(fakes) == sum(row["label"] == "fake" for row in every)
    counts = client.get("/api/v1/results/counts?label=fake", headers=AUTH).json()
    assert sum(counts.values()) == 12 and set(counts) == labels
    first = client.get("/api/v1/results?limit=5", headers=AUTH).json()
    second = client.get(f"/api/v1/results?limit=5&after={first['next']['after']}", headers=AUTH).json()
    assert [row["id"] for row in first["results"] + second["results"]] == [row["id"] for row in every[:10]]
    by_p_fake = client.get("/api/v1/results?order=p_fake&limit=12", headers=AUTH).json()["results"]
    assert [row["p_fake"] for row in by_p_fake] == sorted((row["p_fake"] for row in every), reverse=True)
    csv_text = client.get("/api/v1/results?format=csv&label=fake", headers=AUTH).text
    assert csv_text.splitlines()[0].startswith("id,path,sha256") and len(csv_text.splitlines()) == len(fakes) + 1
    exported = client.get("/api/v1/results?format=export", headers=AUTH).json()
    assert len(exported) == 12 and exported[0].keys() == every[0].keys()
    for bad in ("label=bogus", "order=sideways", "since=yesterdayish", "limit=0", "order=path&after=3"):
        assert client.get(f"/api/v1/results?{bad}", headers=AUTH).status_code == 422, bad


def test_image_record_pictures_and_labels(client: TestClient, tmp_path: Path, web_settings: Settings) -> None:
    row = upload(client, ("a.jpg", photo_bytes(tmp_path, 4, size=900))).json()["results"][0]
    record = client.get(f"/api/v1/images/{row['id']}", headers=AUTH).json()
    assert record["id"] == row["id"] and record["history"][0]["classifier"] == "hash-a"
    thumbnail = client.get(f"/api/v1/images/{row['id']}/thumbnail", headers=AUTH)
    assert thumbnail.headers["content-type"] == "image/jpeg" and thumbnail.content[:2] == b"\xff\xd8"
    import cv2

    decoded = cv2.imdecode(np.frombuffer(thumbnail.content, np.uint8), cv2.IMREAD_COLOR)
    assert max(decoded.shape[:2]) == 256
    assert client.get(f"/api/v1/images/{row['id']}/preview", headers=AUTH).status_code == 200
    heat = client.get(f"/api/v1/images/{row['id']}/heatmap", headers=AUTH)
    assert heat.status_code == 200 and heat.content[:8] == b"\x89PNG\r\n\x1a\n"
    answer = client.post(f"/api/v1/images/{row['id']}/labels", json={"label": "real", "note": "checked"},
                         headers=AUTH)
    assert answer.status_code == 200 and answer.json()["labels"][0]["label"] == "real"
    assert client.post(f"/api/v1/images/{row['id']}/labels", json={"label": "maybe"}, headers=AUTH).status_code == 422
    with Database(web_settings.resolved_database_url).session() as session:
        label = session.scalars(select(Label)).one()
        assert (label.label, label.note, label.image_id) == ("real", "checked", row["id"])
        assert label.content_id is not None  # recorded exactly as `fakewatch label` records it


def test_forms_need_the_csrf_token(client: TestClient, tmp_path: Path) -> None:
    row = upload(client, ("a.jpg", photo_bytes(tmp_path, 5))).json()["results"][0]
    client.get(f"/login?token={TOKEN}")
    page = client.get(f"/images/{row['id']}").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post(f"/images/{row['id']}/labels", data={"label": "fake"}).status_code == 403
    assert client.post(f"/images/{row['id']}/labels", data={"label": "fake", "csrf_token": "0" * 64}).status_code == 403
    assert client.post(f"/api/v1/images/{row['id']}/labels", json={"label": "fake"}).status_code == 403
    done = client.post(f"/images/{row['id']}/labels", data={"label": "fake", "csrf_token": token},
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.get(f"/api/v1/images/{row['id']}", headers=AUTH).json()["labels"][0]["label"] == "fake"
    cards = client.post("/check", files=[("files", ("b.jpg", photo_bytes(tmp_path, 6), "image/jpeg"))],
                        data={"csrf_token": token})
    assert cards.status_code == 200 and 'class="card verdict-' in cards.text


def test_paths_in_parameters_never_reach_the_file_system(client: TestClient) -> None:
    for path in ("/api/v1/images/..%2F..%2Fetc%2Fpasswd", "/api/v1/images/1%2F..%2F..%2Fetc/thumbnail",
                 "/api/v1/images/-1/preview", "/api/v1/images/99999/thumbnail",
                 "/api/v1/classifiers/..%2F..%2Fetc/plots/passwd", "/api/v1/classifiers/hash-a/plots/..%2Fcard.json",
                 "/api/v1/classifiers/hash-a/plots/%2Fetc%2Fpasswd", "/static/..%2F..%2Fconfig.py",
                 "/api/v1/classifiers/..%2Fhash-b/activate"):
        method = client.post if path.endswith("activate") else client.get
        response = method(path, headers=AUTH)
        assert response.status_code in (404, 405, 422), (path, response.status_code)
        assert b"root:" not in response.content and b"fakewatch" not in response.content[:20]
    assert client.get("/api/v1/classifiers/hash-a/plots/training.png", headers=AUTH).status_code == 200


def test_classifiers_status_and_metrics(client: TestClient, tmp_path: Path) -> None:
    listed = client.get("/api/v1/classifiers", headers=AUTH).json()
    versions = {item["version"]: item for item in listed}
    assert versions["hash-a"]["active"] and not versions["hash-b"]["active"]
    assert versions["hash-a"]["plots"] == ["training.png"]
    assert client.post("/api/v1/classifiers/hash-b/activate", headers=AUTH).json() == {"active": "hash-b"}
    row = upload(client, ("a.jpg", photo_bytes(tmp_path, 7))).json()["results"][0]
    assert row["classifier"] == "hash-b"
    assert client.post("/api/v1/classifiers/nope/activate", headers=AUTH).status_code == 404
    status = client.get("/api/v1/status", headers=AUTH).json()
    assert status["mode"] == "embedded" and status["images"]["done"] == 1
    assert len(status["verdicts_last_hour_per_minute"]) == 60 and status["verdicts_last_hour_per_minute"][-1] == 1
    metrics = client.get("/api/v1/metrics", headers=AUTH)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'fakewatch_images{status="done"} 1' in text
    assert 'fakewatch_verdicts_total{classifier="hash-b"} 1' in text
    assert 'fakewatch_classify_latency_seconds_bucket{le="+Inf"} 1' in text
    for line in text.splitlines():  # every line is a comment or `name{labels} number`
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+", line), line
    for page in ("/check", "/results", "/results?view=list", "/classifiers", "/status", f"/images/{row['id']}"):
        assert client.get(page, headers=AUTH).status_code == 200, page


def test_written_photos_are_listed_with_escaped_names(client: TestClient, tmp_path: Path, web_settings: Settings,
                                                      run_cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "incoming"
    write_photos(folder, 1)
    (folder / "img_0000.jpg").rename(folder / "evil\x1b]0;owned\x07.jpg")
    from fakewatch.mode import open_mode

    with open_mode(web_settings) as mode:
        mode.intake.process([str(path) for path in folder.iterdir()])
    page = client.get("/results?view=list", headers=AUTH).text
    assert "\x1b" not in page and "\\x1b" in page


def test_fakewatch_serve_prints_a_login_url_that_works(tmp_path: Path, env: dict[str, str]) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.integration.services import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "fakewatch.cli", "serve", "--port", str(port)],
                               env={**os.environ, **env, "FAKEWATCH_API_TOKEN": ""}, stderr=subprocess.PIPE,
                               text=True)
    try:
        line = process.stderr.readline()  # type: ignore[union-attr]
        url = re.search(r"http://127\.0\.0\.1:\d+/login\?token=\S+", line)
        assert url, line
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client() as browser:
            assert browser.get(f"http://127.0.0.1:{port}/results").status_code == 401
            page = browser.get(url.group(0), follow_redirects=True)
            assert page.status_code == 200 and "Check an image" in page.text
            assert browser.get(f"http://127.0.0.1:{port}/results").status_code == 200
    finally:
        process.terminate()
        process.wait(20)
