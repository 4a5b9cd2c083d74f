"""The dashboard in a real browser: Debian's chromium, headless through Selenium, against a real `shopformer serve`.

`make test` installs chromium and its driver (scripts/install-system-packages.sh); elsewhere the
tests skip without them, and in CI (`CI` set) they fail instead of skipping. With
`SHOPFORMER_SAVE_SCREENSHOTS=1` the screenshots are also written to docs/img/ for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from shopformer.predict.estimator import Shopformer
from shopformer.predict.explain import explain
from tests.serve.conftest import event, start_server, user_with_history

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
_WAIT_S = 30


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests (make test installs what they need)")
    pytest.skip(reason)


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/usr/lib/chromium/{name}") if Path(p).is_file()), None)
    if found is None:
        _unavailable(f"{name} is not installed (apt-get install chromium chromium-driver)")
    return found


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        _unavailable("selenium is missing (the `dev` extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(_binary("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(report_bundles, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    running = start_server(report_bundles.tasks, folder / "events.sqlite", folder / "cache", log=folder / "server.log")
    yield running
    running.stop()


def _errors(driver) -> list[dict]:
    """Console messages of level SEVERE since the last call (failed requests and script errors both log one)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, _WAIT_S, poll_frequency=0.2).until(condition, message=f"waiting for {what}")


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def _screenshot(driver, folder: Path, name: str) -> None:
    """Saves the whole page (the window grown to its height) under `folder`, and in docs/img/ when asked to."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 900), 2400))
    driver.save_screenshot(str(folder / f"{name}.png"))
    if os.environ.get("SHOPFORMER_SAVE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(DOCS_IMAGES / f"{name}.png"))
    driver.set_window_size(1280, 1100)


def _post(server, *events: dict) -> None:
    with server.client() as client:
        answer = client.post("/v1/events", json={"events": list(events)})
        assert answer.status_code == 200 and answer.json()["stored"] == len(events), answer.text


def test_the_overview_shows_segments_model_health_and_the_live_feed(server, browser, report_bundles, tmp_path):
    browser.get(f"{server.url}/dashboard")
    _wait(browser, lambda d: "users" in _text(d, "#segment-table th") and "(" in _text(d, "#legend"), "the segment map")
    _wait(browser, lambda d: "ok" in _text(d, "#health-facts") and "auc" in _text(d, "#health-tasks"), "model health")
    user = user_with_history(report_bundles.events, nth=4)
    item = report_bundles.events["item_id"].drop_nulls()[0]
    _post(server, event("feed-1", user, item, int(time.time()) - 5, "cart"))
    _wait(browser, lambda d: user in _text(d, "#feed-table tbody") and "cart" in _text(d, "#feed-table tbody"), "the live feed")
    _wait(browser, lambda d: re.search(r"\b[1-9]\d* / 0 / 0", _text(d, "#health-facts")), "the stored-event counter")
    assert _errors(browser) == []
    _screenshot(browser, tmp_path, "dashboard")


def test_a_searched_users_timeline_shows_an_event_posted_through_the_api(server, browser, report_bundles, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    user = user_with_history(report_bundles.events, nth=1)
    browser.get(f"{server.url}/dashboard/user")
    _wait(browser, lambda d: d.execute_script("return document.querySelectorAll('#user-suggestions option').length") > 0,
          "user suggestions")
    box = browser.find_element(By.ID, "user-input")
    box.send_keys(user, Keys.ENTER)
    _wait(browser, lambda d: "bundle" in _text(d, "#timeline-table tbody"), "the user's bundle history")
    assert f"id={user}" in browser.current_url
    _wait(browser, lambda d: "%" in _text(d, "#predictions .body") and "rank" in _text(d, "#recommendations th"),
          "predictions and recommendations")
    _wait(browser, lambda d: "Loading" not in _text(d, "#profile .body") and "Loading" not in _text(d, "#explanations .body"),
          "the profile and explanations panels")
    # Explanations arrive through their own endpoint where the service has one; the page draws what it returns.
    document = {"user_id": user, **explain(Shopformer.load(report_bundles.tasks), user)}
    assert document["sentence"] in browser.execute_script("return explanationView(arguments[0]).textContent", document)
    item = report_bundles.events["item_id"].drop_nulls().unique().sort()[-1]
    _post(server, event("timeline-1", user, item, int(time.time()) - 2, "purchase"))
    _wait(browser, lambda d: f"purchase {item}" in _text(d, "#timeline-table tr.ingested"), "the posted event on the timeline")
    assert _errors(browser) == []
    _screenshot(browser, tmp_path, "dashboard-user")
