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
    stored = Path(rows[0]["path"])  # uploads/26/26ba...(sha256)/evil.jpg: the name, never its folders
    assert stored.is_relative_to(web_settings.uploads_path) and stored.parent.name == rows[0]["sha256"]
    assert stored.name == "evil.jpg"
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


# --- the shipped classifiers behind the console ----------------------------------------------------------


@pytest.fixture
def shipped_client(tmp_path: Path) -> Iterator[TestClient]:
    """The console over a fresh home: the shipped thumbnail and photo classifiers are the active ones."""
    settings = load_settings({"home": str(tmp_path / "shipped-home")}, env={})
    with TestClient(create_app(settings, TOKEN), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def signed_in(client: TestClient) -> str:
    """Log the client in with the login URL; the pages' CSRF token."""
    client.get(f"/login?token={TOKEN}")
    page = client.get("/check").text
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


def check_form(client: TestClient, csrf: str, *files: tuple[str, bytes]) -> Any:
    return client.post("/check", files=[("files", (name, data, "application/octet-stream")) for name, data in files],
                       data={"csrf_token": csrf})


def cards_of(page: str) -> list[str]:
    return re.findall(r'<article class="card.*?</article>', page, re.S)


def test_the_check_page_gives_every_file_its_card_refused_or_not_judged(shipped_client: TestClient) -> None:
    csrf = signed_in(shipped_client)
    rng = np.random.default_rng(11)
    thumbnail = png_bytes(noisy_image(rng, 32))  # the thumbnail classifier's domain
    odd_size = png_bytes(smooth_image(rng, 100))  # 100x100: no shipped classifier covers it
    answer = check_form(shipped_client, csrf, ("suspect.png", thumbnail), ("notes.jpg", b"just some text\n" * 20),
                        ("empty.png", b""), ("odd.png", odd_size))
    assert answer.status_code == 200, answer.text[:300]
    cards = cards_of(answer.text)
    assert len(cards) == 4
    judged, text, empty, unjudged = cards
    assert "suspect.png" in judged and "<meter" in judged and "resnet-" in judged
    assert "notes.jpg" in text and "not a JPEG, PNG, WebP, BMP, TIFF or GIF image" in text and "<meter" not in text
    assert "empty.png" in empty and "empty file" in empty and "<meter" not in empty
    assert "Not judged" in unjudged and "no active classifier covers this size" in unjudged
    for shown_as_judged in ("<meter", "0.500", "threshold", "too close to call", "confidence"):
        assert shown_as_judged not in unjudged, shown_as_judged
    rows = shipped_client.get("/api/v1/results", headers=AUTH).json()["results"]
    assert sorted(row["reason"] for row in rows) == ["classifier", "out_of_domain"]  # the good ones recorded


def test_an_image_no_classifier_covers_is_not_shown_as_judged(shipped_client: TestClient) -> None:
    rng = np.random.default_rng(12)
    rows = upload(shipped_client, ("odd.png", png_bytes(smooth_image(rng, 100))),
                  ("small.png", png_bytes(noisy_image(rng, 32)))).json()["results"]
    odd, small = rows
    assert (odd["reason"], odd["classifier"]) == ("out_of_domain", "none")
    page = shipped_client.get(f"/images/{odd['id']}", headers=AUTH).text
    verdict = page[page.index("<h2>Verdict</h2>"):page.index('<section id="evidence">')]
    assert "Not judged" in verdict and "100x100 px: no active classifier covers images this size" in verdict
    assert "<meter" not in verdict and "0.500" not in verdict and "threshold" not in verdict
    assert "heatmap-toggle" not in page  # no classifier: no heatmap to show
    assert shipped_client.get(f"/api/v1/images/{odd['id']}/heatmap", headers=AUTH).status_code == 404
    judged = shipped_client.get(f"/images/{small['id']}", headers=AUTH).text
    assert "heatmap-toggle" in judged and "Decided by the classifier" in judged
    grid = shipped_client.get("/results", headers=AUTH).text
    assert grid.count("not judged") == 1 and "p(fake) 0.50" not in grid
    assert re.search(r'class="score">p\(fake\) [01]\.\d\d<', grid)  # the number says what it is
    listing = shipped_client.get("/results?view=list", headers=AUTH).text
    assert "not judged" in listing and "0.500" not in listing


def test_uploads_are_listed_by_the_name_they_were_uploaded_with(shipped_client: TestClient) -> None:
    data = png_bytes(noisy_image(np.random.default_rng(13), 32))
    row = upload(shipped_client, ("C:\\cases\\suspect.png", data)).json()["results"][0]
    assert Path(row["path"]).name == "suspect.png"
    again = upload(shipped_client, ("renamed.png", data)).json()["results"][0]
    assert again["id"] == row["id"] and again["path"] == row["path"]  # the same bytes: the first name stays
    grid = shipped_client.get("/results", headers=AUTH).text
    assert re.search(r'<span class="file">suspect\.png', grid) and row["sha256"] not in grid.replace(
        row["path"], "")  # only the tooltip holds the stored path
    listing = shipped_client.get("/results?view=list", headers=AUTH).text
    assert re.search(r'>suspect\.png</a> <span class="muted">uploaded</span>', listing)
    page = shipped_client.get(f"/images/{row['id']}", headers=AUTH).text
    assert "<h1>suspect.png</h1>" in page


def test_heatmaps_are_drawn_readable_with_a_legend_in_bounded_batches(shipped_client: TestClient) -> None:
    import cv2

    from fakewatch.classifiers.explain import BATCH, LEGEND_HEIGHT, MIN_SIDE, explain
    from fakewatch.classifiers.loading import load
    from fakewatch.registry import Registry

    rng = np.random.default_rng(14)
    small = png_bytes(noisy_image(rng, 32))
    large = write_image(Path(shipped_client.app.state.console.settings.home) / "large.jpg",  # type: ignore[attr-defined]
                        cv2.resize(smooth_image(rng, 64), (1800, 1200)), quality=85).read_bytes()
    rows = upload(shipped_client, ("small.png", small), ("large.jpg", large)).json()["results"]
    drawn = []
    for row in rows:
        answer = shipped_client.get(f"/api/v1/images/{row['id']}/heatmap", headers=AUTH)
        assert answer.status_code == 200 and answer.content[:8] == b"\x89PNG\r\n\x1a\n"
        drawn.append(cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR))
    assert drawn[0].shape == (MIN_SIDE + LEGEND_HEIGHT, MIN_SIDE, 3)  # 32 px enlarged 12 times, legend below
    assert drawn[1].shape == (683 + LEGEND_HEIGHT, 1024, 3)  # 1800x1200 drawn at 1024 px, legend below
    legend = drawn[0][MIN_SIDE:]
    assert legend[24:38, 40:-80].std(axis=1).mean() > 20  # a colour ramp, not a flat band

    settings = shipped_client.app.state.console.settings  # type: ignore[attr-defined]
    sizes: list[int] = []

    class Recording:  # the real photo classifier, noting how many images each call gets
        def __init__(self, inner: Any) -> None:
            self.inner, self.spec, self.threshold, self.version = inner, inner.spec, inner.threshold, inner.version

        def predict(self, images: np.ndarray) -> np.ndarray:
            sizes.append(len(images))
            return self.inner.predict(images)  # type: ignore[no-any-return]

    photo = load(Registry(settings).resolve("photo"), 256, "lite")
    explanation = explain(Recording(photo), cv2.resize(smooth_image(rng, 64), (4000, 3000)))
    assert max(sizes) <= BATCH and sum(sizes) == 50  # the picture itself and 49 positions
    assert explanation.heat.shape == (224, 224)
    top, left, height, width = explanation.region
    assert (round(top), round(left), round(height), round(width)) == (1388, 1888, 224, 224)  # the centre crop


def test_api_reference_is_a_page_of_its_own_and_the_schema_stays(client: TestClient) -> None:
    page = client.get("/api/docs", headers=AUTH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for expected in ("POST", "/api/v1/scan", "multipart/form-data", "/api/v1/results", "after", "offset",
                     "/api/v1/images/{image_id}/labels", "LabelIn", "/metrics"):
        assert expected in text, expected
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/app.js" defer>']  # none inline
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing from elsewhere
    assert "/check" not in re.findall(r"<code>GET ([^<]+)</code>", text)  # pages are not the API
    schema = client.get("/api/v1/openapi.json", headers=AUTH).json()
    assert "/api/v1/results" in schema["paths"] and "/check" not in schema["paths"]


def test_a_page_without_the_token_is_a_login_form(client: TestClient) -> None:
    browser = {"accept": "text/html,application/xhtml+xml"}
    for path in ("/", "/results?label=fake"):
        page = client.get(path, headers=browser)
        assert page.status_code == 401 and '<input id="token" name="token" type="password"' in page.text
    assert 'name="next" value="/results?label=fake"' in page.text
    wrong = client.post("/login", data={"token": "not-it", "next": "/results"}, headers=browser)
    assert wrong.status_code == 401 and "Wrong or missing token" in wrong.text
    right = client.post("/login", data={"token": TOKEN, "next": "/results?label=fake"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/results?label=fake"
    assert "HttpOnly" in right.headers["set-cookie"]
    assert client.get("/", follow_redirects=False).headers["location"] == "/check"
    elsewhere = client.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
    assert elsewhere.headers["location"] == "/check"


def test_classifiers_page_shows_the_accuracy_classifiers_list_shows(shipped_client: TestClient, env: dict[str, str]
                                                                    ) -> None:
    listed = CliRunner().invoke(cli, ["--classifier", "", "classifiers", "list"], env=env, obj={}).output
    photo = re.search(r"efficientnet-lite0-\S+\s+photo\s+\S+\s+\d+\s+(\d\.\d{4})", listed)
    assert photo, listed
    page = shipped_client.get("/classifiers", headers=AUTH).text
    row = re.search(r'<tr data-version="efficientnet-lite0-.*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    assert float(photo.group(1)) > 0.5 and f'<td class="num">{photo.group(1)}</td>' in row  # a figure, not "-"


def test_metrics_are_served_where_prometheus_looks(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = client.get("/metrics", headers=AUTH)
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert "fakewatch_images{" in scraped.text
    assert scraped.text == client.get("/api/v1/metrics", headers=AUTH).text


def test_serving_beyond_loopback_needs_a_long_token(tmp_path: Path) -> None:
    for short in ("a", "fifteen-chars-x"):
        env = {"FAKEWATCH_HOME": str(tmp_path), "FAKEWATCH_API_TOKEN": short, "FAKEWATCH_CONFIG": ""}
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], obj={}, env=env)
        assert result.exit_code == 2 and "at least 16 characters" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "fifteen-chars-x" not in result.output


def test_wrong_tokens_are_throttled_per_client(web_settings: Settings) -> None:
    app = create_app(web_settings, TOKEN)
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("10.0.0.7", 5000)) as guessing, \
            TestClient(app, base_url="http://127.0.0.1:8000", client=("10.0.0.8", 5000)) as other:
        codes = [guessing.get("/api/v1/status", headers={"Authorization": f"Bearer guess-{n}"}).status_code
                 for n in range(300)]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
        refused = guessing.get("/api/v1/status", headers=AUTH)  # the right token too, while refused
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert guessing.get(f"/login?token={TOKEN}", follow_redirects=False).status_code == 429
        assert other.get("/api/v1/status", headers=AUTH).status_code == 200  # another client is not
        assert guessing.get("/api/v1/healthz").status_code == 200


def test_the_throttle_forgets_old_failures_and_stays_small() -> None:
    from fakewatch.web.throttle import Throttle

    now = [1000.0]
    throttle = Throttle(limit=3, window=60, clients=100, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("a")
    assert throttle.retry_after("a") == 60 and throttle.retry_after("b") == 0
    now[0] += 59.5
    assert throttle.retry_after("a") == 1
    now[0] += 1
    assert throttle.retry_after("a") == 0
    for index in range(1000):
        throttle.failed(f"client-{index}")
    assert len(throttle._failures) == 100


def test_numbers_out_of_range_are_refused_not_failed(client: TestClient, tmp_path: Path) -> None:
    huge = "99999999999999999999"
    for path in (f"/api/v1/images/{huge}", f"/api/v1/images/{huge}/thumbnail", f"/api/v1/images/{huge}/heatmap",
                 f"/api/v1/results?after={huge}", f"/api/v1/results?order=path&offset={huge}",
                 "/api/v1/results?offset=-1", f"/images/{huge}", f"/results?after={huge}", f"/results?offset={huge}"):
        assert client.get(path, headers=AUTH).status_code == 422, path
    assert client.post(f"/api/v1/images/{huge}/labels", json={"label": "fake"}, headers=AUTH).status_code == 422
    csrf = signed_in(client)
    data = photo_bytes(tmp_path, 20)
    many = [(f"p{index}.jpg", data) for index in range(200)]
    page = check_form(client, csrf, *many)
    assert page.status_code == 413 and "200 files in one request; at most 64" in page.text
    assert 'id="check-error"' in page.text and not cards_of(page.text)
    assert upload(client, *many[:65]).status_code == 413
    assert client.get("/api/v1/results", headers=AUTH).json()["results"] == []  # nothing was recorded
    assert check_form(client, csrf, *many[:64]).status_code == 200
