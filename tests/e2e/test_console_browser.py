"""The web console in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium)
with the shipped classifiers: sign in, upload (refused and out-of-domain files too), filter, label, heatmap,
activate, the API reference. Screenshots of every page go to build/screenshots/ on each run."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from fakewatch.config import Settings, load_settings
from fakewatch.db.session import Database
from fakewatch.db.tables import Label
from tests.conftest import noisy_image, smooth_image, write_image
from tests.integration.services import free_port

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TOKEN = "browser-test-token-42"

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                 reason="Debian's chromium and chromium-driver are not installed "
                                        "(apt-get install chromium chromium-driver)")]


@pytest.fixture
def console(tmp_path: Path, other_stand_in) -> Iterator[tuple[str, Settings]]:  # type: ignore[no-untyped-def]
    """The console with the shipped classifiers active, and one more version (hash-b) to activate."""
    import uvicorn

    from fakewatch.web.app import create_app

    home = tmp_path / "home"
    shutil.copytree(other_stand_in.path, home / "classifiers" / other_stand_in.version)
    settings = load_settings({"home": str(home)}, env={})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, TOKEN), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,960",
                     "--disable-gpu", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see Content-Security-Policy reports
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def shoot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def one_of_each(folder: Path, settings: Settings) -> dict[str, Path]:
    """A file the shipped thumbnail classifier calls fake and one it calls real (found by classifying
    candidates)."""
    from fakewatch.mode import open_mode

    trial = settings.replace(home=str(folder / "trial-home"), registry_dir=str(settings.registry_path))
    rng = np.random.default_rng(5)
    found: dict[str, Path] = {}
    with open_mode(trial) as mode:
        for index in range(40):
            image = (noisy_image if index % 2 else smooth_image)(rng, 48)
            path = write_image(folder / f"candidate_{index:02d}.jpg", image, quality=92)
            recorded = mode.intake.process([str(path)])
            with mode.database.session() as session:
                from fakewatch.db.results import rows_for_ids

                label = rows_for_ids(session, [recorded[str(path)][0]])[0]["label"]
            found.setdefault(label, path)
            if "fake" in found and "real" in found:
                return found
    raise AssertionError(f"no fake and real among the candidates: {found}")


def csp_complaints(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_upload_filter_label_and_activate_in_a_real_browser(console: tuple[str, Settings], browser: Any,
                                                            tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, settings = console
    chosen = one_of_each(tmp_path, settings)
    browser.get(f"{base}/")
    assert "token is needed" in browser.page_source  # no cookie yet: the sign-in form
    shoot(browser, "login")
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, ".login button").click()
    WebDriverWait(browser, 10).until(lambda driver: "Wrong or missing token" in driver.page_source)
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, ".login button").click()
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url.endswith("/check"))

    # more pictures first, so that the listings have something to list
    rng = np.random.default_rng(9)
    extra = [write_image(tmp_path / "more" / f"photo_{index:02d}.jpg",
                         (noisy_image if index % 2 else smooth_image)(rng, 160), quality=90) for index in range(14)]
    browser.find_element(By.ID, "files").send_keys("\n".join(str(path) for path in extra))
    browser.find_element(By.CSS_SELECTOR, "form.upload button").click()
    WebDriverWait(browser, 60).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".card")) == 14)

    # a judged pair, a text file renamed .jpg (refused) and a 100x100 picture no shipped classifier covers
    odd = write_image(tmp_path / "mixed" / "odd_size.png", smooth_image(rng, 100), fmt="PNG")
    renamed = tmp_path / "mixed" / "notes.jpg"
    renamed.write_bytes(b"minutes of the meeting\n" * 40)
    browser.get(f"{base}/check")
    browser.find_element(By.ID, "files").send_keys(f"{chosen['fake']}\n{chosen['real']}\n{renamed}\n{odd}")
    browser.find_element(By.CSS_SELECTOR, "form.upload button").click()
    cards = WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".card"))
    assert [card.find_element(By.CSS_SELECTOR, ".name").text for card in cards] == [
        chosen["fake"].name, chosen["real"].name, "notes.jpg", "odd_size.png"]
    fake, real, refused, unjudged = cards
    assert "verdict-fake" in fake.get_attribute("class") and "verdict-real" in real.get_attribute("class")
    assert all(card.find_element(By.TAG_NAME, "meter").is_displayed() for card in (fake, real))
    assert all(card.find_element(By.CSS_SELECTOR, "img.thumb").get_property("naturalWidth") > 0
               for card in (fake, real, unjudged))
    assert "not a JPEG, PNG, WebP, BMP, TIFF or GIF image" in refused.text and not refused.find_elements(
        By.TAG_NAME, "meter")
    assert "Not judged: no active classifier covers this size" in unjudged.text
    assert not unjudged.find_elements(By.TAG_NAME, "meter") and "0.500" not in unjudged.text
    assert "threshold" not in unjudged.text
    shoot(browser, "check")

    browser.get(f"{base}/results")
    Select(browser.find_element(By.NAME, "label")).select_by_value("fake")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda driver: "label=fake" in driver.current_url)
    tiles = browser.find_elements(By.CSS_SELECTOR, ".tile")
    assert tiles and all(tile.get_attribute("data-label") == "fake" for tile in tiles)
    assert all(tile.find_element(By.CSS_SELECTOR, ".caption").text.startswith("FAKE p(fake) 0.") for tile in tiles)
    names = {tile.find_element(By.CSS_SELECTOR, ".file").text.split(" ")[0] for tile in tiles}
    assert chosen["fake"].name in names and all(len(name) < 40 for name in names)  # names, not digests
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda driver: "all" in driver.find_element(By.ID, "counts").text)
    shoot(browser, "results")
    browser.get(f"{base}/results?view=list")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.row")) == 17
    assert "odd_size.png uploaded" in browser.page_source.replace("</a> <span class=\"muted\">", " ").replace(
        "</span>", "")
    shoot(browser, "results-list")

    browser.find_element(By.LINK_TEXT, "odd_size.png").click()
    assert "Not judged" in browser.find_element(By.CSS_SELECTOR, ".facts").text
    assert not browser.find_elements(By.ID, "heatmap-toggle")
    shoot(browser, "image-not-judged")

    browser.get(f"{base}/results?label=fake")
    browser.find_elements(By.CSS_SELECTOR, ".tile")[0].click()
    image_id = int(browser.current_url.rstrip("/").split("/")[-1].split("#")[0])
    assert "Decided by the classifier" in browser.find_element(By.CSS_SELECTOR, ".facts").text
    browser.find_element(By.ID, "heatmap-toggle").click()
    picture = browser.find_element(By.ID, "picture")
    WebDriverWait(browser, 30).until(lambda driver: picture.get_property("currentSrc").endswith("/heatmap")
                                     and picture.get_property("naturalWidth") >= 384)
    shoot(browser, "image-heatmap")
    browser.find_element(By.NAME, "note").send_keys("checked the source")
    browser.find_element(By.ID, "mark-real").click()
    WebDriverWait(browser, 10).until(lambda driver: "checked the source" in driver.page_source)
    shoot(browser, "image")
    with Database(settings.resolved_database_url).session() as session:
        label = session.scalars(select(Label)).one()
        assert (label.image_id, label.label, label.note) == (image_id, "real", "checked the source")

    browser.get(f"{base}/classifiers")
    photo = browser.find_element(By.CSS_SELECTOR, 'tr[data-version^="efficientnet-lite0-"]')
    from fakewatch.registry import Registry, summary_metrics

    shipped = Registry(settings).find(photo.get_attribute("data-version"))
    assert f"{summary_metrics(shipped.card)['accuracy']:.4f}" in photo.text  # what `classifiers list` shows
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-version="hash-b"]')
    row.find_element(By.CSS_SELECTOR, "button").click()
    alert = WebDriverWait(browser, 5).until(lambda driver: driver.switch_to.alert)
    assert "hash-b" in alert.text
    alert.accept()
    hash_b = 'tr[data-version="hash-b"]'
    # the page reloads after activating: a row found just before the reload goes stale, so look again
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda driver: "active" in driver.find_element(By.CSS_SELECTOR, hash_b).get_attribute("class"))
    assert "hash-b" in browser.find_element(By.CSS_SELECTOR, ".top .context").text
    shoot(browser, "classifiers")

    browser.get(f"{base}/status")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    shoot(browser, "status")

    browser.get_log("browser")  # what came before
    browser.find_element(By.LINK_TEXT, "API").click()
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url.endswith("/api/docs"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "HTTP API reference"
    endpoints = browser.find_elements(By.CSS_SELECTOR, "section.endpoint h3")
    assert any(heading.text == "POST /api/v1/scan" for heading in endpoints) and len(endpoints) > 10
    assert not csp_complaints(browser)
    shoot(browser, "api-reference")
