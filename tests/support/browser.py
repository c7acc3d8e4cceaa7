"""A real browser against the real ASGI app: Debian's headless Chromium (selenium, the system chromedriver) and
uvicorn serving rtcstack_site.asgi with collected static files, as production does."""

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.servers import ROOT, free_port, server_environment

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"  # screenshots
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class AsgiServer:
    """uvicorn serving rtcstack_site.asgi (pages and WebSockets) on a fixed port, restartable in place."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "CSRF_TRUSTED_ORIGINS": self.url}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "uvicorn", "rtcstack_site.asgi:application", "--host", "127.0.0.1",
            "--port", str(self.port), "--ws", "websockets-sansio", "--lifespan", "off", "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/dashboard/login/", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def restart(self, while_down: Callable[[], None] = lambda: None) -> None:
        self.stop()
        while_down()
        self.start()


@contextmanager
def asgi_server(tmp_path: Path) -> Iterator[AsgiServer]:
    """Static files collected first (whitenoise serves STATIC_ROOT when DEBUG is off); plain http cookies."""
    static_root = tmp_path / "static"
    env = {
        **server_environment(),
        "STATIC_ROOT": str(static_root),
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
    }
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    server = AsgiServer(env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def chromium(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium through the system chromedriver, its console log kept for the test to read."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,860"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 5, what: str = "") -> Any:
    try:
        # The pages rebuild elements as messages arrive: an element gone stale is simply looked up again.
        return WebDriverWait(
            driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
        ).until(condition)
    except TimeoutException:
        screenshot(driver, "dashboard-failure.png")
        raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}") from None


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path
