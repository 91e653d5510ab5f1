"""A real headless browser for the dashboard and report tests: Debian's chromium, driven by
Selenium through Debian's chromium-driver (the same package version, so the protocol always
matches; Selenium's own driver download is never used). `.ci/run` installs both when missing;
a machine without them fails these tests with what to install, it does not skip them.

Every page opened is checked for console errors (`Browser.console_errors`), and screenshots go
to the directory the test names (tests use tmp_path; `make screenshots` uses docs/)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = ("/usr/bin/chromium", "chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
INSTALL = "apt-get install chromium chromium-driver (.ci/run does this when they are missing)"


def _which(candidates: tuple[str, ...]) -> str | None:
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class Browser:
    """One headless chromium window."""

    def __init__(self, width: int = 1366, height: int = 900) -> None:
        binary, driver = _which(CHROMIUM), _which(CHROMEDRIVER)
        if binary is None or driver is None:
            pytest.fail(f"the browser tests need Debian's chromium and chromium-driver: {INSTALL}")
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={width},{height}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.driver.set_page_load_timeout(30)

    def open(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return str(self.driver.current_url)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self) -> str:
        return str(self.find("body").text)

    def console_errors(self) -> list[str]:
        """Console messages at level SEVERE since the last call (errors, failed loads)."""

        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [str(e["message"]) for e in entries if e.get("level") == "SEVERE"]

    def screenshot(self, path: Path, *, full_page: bool = True, max_height: int = 6000) -> Path:
        """A PNG of the page; with full_page the window grows to the page's height first (at
        most max_height pixels: the top of a long page)."""

        path.parent.mkdir(parents=True, exist_ok=True)
        if full_page:
            height = int(self.driver.execute_script("return document.body.scrollHeight"))
            width = int(self.driver.get_window_size()["width"])
            self.driver.set_window_size(width, min(max(height + 40, 600), max_height))
        self.driver.save_screenshot(str(path))
        return path

    def print_pdf(self) -> bytes:
        """The page printed to PDF by chromium itself (to compare with WeasyPrint's)."""

        import base64

        return base64.b64decode(self.driver.print_page())

    def close(self) -> None:
        self.driver.quit()


@pytest.fixture
def browser() -> Iterator[Browser]:
    one = Browser()
    try:
        yield one
    finally:
        one.close()
