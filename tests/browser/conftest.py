"""A real server and a real browser: uvicorn on a free port in a thread, and Debian's headless
Chromium driven through chromedriver (one browser for the whole session)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from api.deps import Services
from ledger.settings import Settings
from tests.live import uvicorn_serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# This machine has no internet: without these, Chromium keeps dialling Google's services.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1024",
)  # fmt: skip
WAIT_SECONDS = 10.0
# Where the browser tests leave screenshots of each page for a reviewer (git-ignored).
SCREENSHOTS = Path(__file__).parent / "screenshots"
WIDE, NARROW = 1400, 390  # an operator's desktop, a phone


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "Debian's chromium and chromium-driver are needed for the browser tests"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit driver path: Selenium Manager (which would download one) never runs.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class LiveServer:
    url: str
    services: Services

    def caught_up(self) -> None:
        """Wait until every projection has processed everything stored so far."""
        head = self.services.ledger.recorder.max_notification_id() or 0
        self.services.read_models.wait(head, timeout=WAIT_SECONDS)


@contextmanager
def serve(settings: Settings) -> Iterator[LiveServer]:
    """The whole app (lifespan, projections) behind a real uvicorn on a free port."""
    app = create_app(settings)
    with uvicorn_serving(app) as url:
        yield LiveServer(url, app.state.services)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with serve(settings) as server:
        yield server


class AdminPages:
    """What a person does on the admin pages, and what they see there."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver, self.base_url = driver, base_url

    def wait(self, condition: Callable[[WebDriver], Any]) -> Any:
        return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.02).until(condition)

    def settled(self) -> str:
        """Wait until the page has finished loading (or refusing) and return its state."""

        def finished(driver: WebDriver) -> str | None:
            state = driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")
            return state if state in ("ready", "signed-out", "error") else None

        state: str = self.wait(finished)
        return state

    def open(self, path: str) -> str:
        self.driver.get(self.base_url + path)
        return self.settled()

    def element(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def sign_in(self, token: str) -> str:
        self.element("token").send_keys(token)
        self.driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
        return self.settled()

    def click(self, element: WebElement) -> str:
        """Click something that loads a page, and wait for that page to settle."""
        element.click()
        self.wait(staleness_of(element))
        return self.settled()

    def message(self) -> str:
        return self.element("message").text

    def table(self, element_id: str) -> list[list[str]]:
        # A row's details (tr.details, under it) are not a row of the table.
        rows = self.element(element_id).find_elements(By.CSS_SELECTOR, "tbody tr:not(.details)")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    @contextmanager
    def viewport(self, width: int, height: int = 900) -> Iterator[None]:
        """The page laid out for a screen `width` CSS pixels wide (a phone below 600)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1,
                   "mobile": width < 600}  # fmt: skip
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        try:
            yield
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def sideways_overflow(self) -> int:
        """How many CSS pixels the page is wider than its viewport (0: no sideways scroll)."""
        overflow: int = self.driver.execute_script(
            "const e = document.documentElement; return e.scrollWidth - e.clientWidth;"
        )
        return overflow

    def screenshot(self, name: str, widths: tuple[int, ...] = (WIDE, NARROW)) -> None:
        """Save the whole page at each width as screenshots/{name}-{width}.png."""
        SCREENSHOTS.mkdir(exist_ok=True)
        for width in widths:
            with self.viewport(width):
                height = self.driver.execute_script("return document.body.scrollHeight")
            with self.viewport(width, max(int(height), 600)):
                self.driver.save_screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))

    def column(self, element_id: str, header: str) -> list[str]:
        headers = [th.text for th in self.element(element_id).find_elements(By.TAG_NAME, "th")]
        index = headers.index(header)
        return [row[index] for row in self.table(element_id)]


@pytest.fixture
def pages(browser: WebDriver, live_server: LiveServer) -> AdminPages:
    # A new tab per test: the token sits in the tab's sessionStorage, per origin, and a later
    # server may get an earlier one's port; a new tab starts signed out.
    earlier = browser.current_window_handle
    browser.switch_to.new_window("tab")
    fresh = browser.current_window_handle
    browser.switch_to.window(earlier)
    browser.close()
    browser.switch_to.window(fresh)
    return AdminPages(browser, live_server.url)
