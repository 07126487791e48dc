"""`/docs` in headless Chromium against a real server, as on an admin network without
internet: Swagger UI renders from this host alone, and its Authorize button sends the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import WAIT_SECONDS, LiveServer

SCREENSHOTS = Path(__file__).parent / "screenshots"
# Recorded before the page's own scripts run, so a refused script or style is seen.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
"""
STATS = "//div[contains(@class, 'opblock-get')][.//*[@data-path='/api/admin/stats']]"

# The page does not touch the store: one backend is enough (database_url is parametrised).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def docs(browser: WebDriver, live_server: LiveServer) -> Iterator[WebDriver]:
    """The browser on `/docs`, once Swagger UI has rendered the operations."""
    added = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP_VIOLATIONS}
    )
    try:
        browser.get(live_server.url + "/docs")
        wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
        yield browser
    finally:
        browser.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.05)


def test_swagger_ui_renders_from_this_host_alone(docs: WebDriver, live_server: LiveServer) -> None:
    assert len(docs.find_elements(By.CSS_SELECTOR, ".opblock")) >= 30
    assert docs.find_element(By.CSS_SELECTOR, "button.authorize").is_displayed()
    urls: list[str] = docs.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert any(u.endswith("/swagger-ui-bundle.js") for u in urls)
    assert any(u.endswith("/openapi.json") for u in urls)
    host = urlsplit(live_server.url).netloc
    assert [u for u in urls if urlsplit(u).netloc != host] == []
    assert docs.execute_script("return window.cspViolations") == []
    screenshot(docs, "docs-1400.png", width=1400)


def test_authorize_sends_the_token_with_try_it_out(docs: WebDriver) -> None:
    docs.find_element(By.CSS_SELECTOR, "button.authorize").click()
    dialog = wait(docs).until(lambda d: d.find_element(By.CSS_SELECTOR, ".auth-container"))
    assert "bearerAuth" in dialog.text
    dialog.find_element(By.CSS_SELECTOR, "input").send_keys("admin-token")
    dialog.find_element(By.CSS_SELECTOR, "button.authorize").click()
    docs.find_element(By.CSS_SELECTOR, "button.btn-done").click()
    stats = docs.find_element(By.XPATH, STATS)
    stats.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait(docs).until(lambda _: stats.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    stats.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = ".live-responses-table tr.response .response-col_status"
    wait(docs).until(lambda _: stats.find_element(By.CSS_SELECTOR, status).text.strip())
    assert stats.find_element(By.CSS_SELECTOR, status).text.strip() == "200"
    assert "Bearer admin-token" in stats.find_element(By.CSS_SELECTOR, ".curl").text


def screenshot(driver: WebDriver, name: str, width: int) -> None:
    """The page at `width` pixels, for people to look at; the window is put back after."""
    before = driver.get_window_size()
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        driver.set_window_size(width, 1000)
        driver.save_screenshot(str(SCREENSHOTS / name))
    finally:
        driver.set_window_size(before["width"], before["height"])
