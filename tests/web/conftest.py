"""Fixtures of the web page's tests: the real daemon with its page on, and a real browser.

The daemon is the real `personalizer run` (replay camera of four photos, real bundle, real
mosquitto) with `[web]` enabled on a free loopback port and a password file. The browser is
Debian's Chromium, headless, driven by Playwright (its own browser download is not used).
Screenshots go to build/test-artifacts/web/.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_harness import Daemon
from tests.web.client import WebClient

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}  # fmt: skip
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
# Sixteen classes, some with long names, for the layout tests (a bundle with 16 slots).
WIDE_CLASSES = ("astronaut", "cat", "coffee", "rocket", "motorcycle", "retina", "galaxies",
                "tissue", "garden gnome", "red bicycle", "watering can", "front door open",
                "car in the drive", "parcel on the step", "empty desk",
                "the neighbour's ginger cat")  # fmt: skip


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class WebDaemon:
    """The daemon with its page: the MQTT side (`daemon`), the page's address and password."""

    daemon: Daemon
    base: str
    password: str | None

    def client(self) -> WebClient:
        """A fresh HTTP client (no cookies)."""
        return WebClient(self.base)

    def logged_in(self) -> WebClient:
        """A client with a session and its CSRF token."""
        client = self.client()
        answer = client.login(self.password or "")
        assert answer.status == 303, answer.text
        return client

    def log(self) -> str:
        """The daemon's log so far."""
        return self.daemon.process.log()


def wait_for_frame(client: WebClient, timeout: float = 30.0) -> int:
    """Until the camera delivered a frame (the page's live view gets one); its number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get("/api/frame?after=0")
        if answer.status == 200:
            return int(answer.headers["X-Frame"])
        assert answer.status == 204, answer.text
    raise AssertionError(f"no camera frame in {timeout} s")


def wait_for_page(base: str, daemon: Daemon, timeout: float = 30.0) -> None:
    """Until the page's server answers (the daemon logs in after MQTT is up)."""
    client = WebClient(base)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get("/login").status in (200, 303):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the page at {base} never answered; log:\n{daemon.process.log()}")


@pytest.fixture
def start_web_daemon(run_daemon: Callable[..., Daemon], tmp_path: Path) -> Callable[..., WebDaemon]:
    """Start the real daemon with `[web]` on; `password=None` runs it without one."""

    def start(
        password: str | None = PASSWORD,
        web: dict[str, Any] | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        wait: bool = True,
        **kwargs: Any,
    ) -> WebDaemon:
        port = free_port()
        table: dict[str, Any] = {"enabled": True, "listen": f"127.0.0.1:{port}"}
        if password is not None:
            secret = tmp_path / "web_password"
            secret.write_text(password + "\n")
            secret.chmod(0o600)
            table["password_file"] = str(secret)
        table.update(web or {})
        daemon = run_daemon(overrides={**(overrides or {}), "web": table}, **kwargs)
        scheme = "https" if "tls_cert" in table else "http"
        base = f"{scheme}://127.0.0.1:{table['listen'].rsplit(':', 1)[1]}"
        if scheme == "http" and wait:
            wait_for_page(base, daemon)
        return WebDaemon(daemon, base, password)

    return start


@pytest.fixture(scope="session")
def wide_bundle() -> Path:
    """A bundle with 16 class slots (otherwise as the tests' usual one)."""
    from tests.support.bundles import BundleSpec, build_bundle

    return build_bundle(
        BundleSpec(num_classes=16, class_names=tuple(f"c{i:02d}" for i in range(16)))
    )


@pytest.fixture(scope="session")
def pretrained_bundle() -> Path:
    """A real ImageNet MobileNetV2 (160 px) with 8 class slots, whose features tell untaught
    objects apart (the seeded random base of the usual bundle does not); the same bundle as
    tests/daemon/test_review.py's, so it is converted once."""
    from tests.support.bundles import BundleSpec, build_bundle

    return build_bundle(
        BundleSpec(image_size=160, alpha=1.0, weights="pretrained", num_classes=8,
                   class_names=tuple("ABCDEFGH"))
    )  # fmt: skip


@pytest.fixture
def web_daemon(start_web_daemon: Callable[..., WebDaemon]) -> WebDaemon:
    """The daemon with its page on and a password."""
    return start_web_daemon()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: scripts/ensure-system-packages.sh installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (`new_page(PHONE)`); closed after the test."""
    contexts: list[Any] = []

    def make(device: dict[str, Any] | None = None) -> Any:
        context = browser.new_context(**(device or DESKTOP))
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save a screenshot of ``page`` as build/test-artifacts/web/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def log_in(page: Any, web: WebDaemon) -> None:
    """Open the page, log in with the form, and wait until the live view shows a frame."""
    page.goto(web.base + "/")
    page.wait_for_url("**/login")
    page.fill("#password", web.password or "")
    page.click("button[type=submit]")
    page.wait_for_url(web.base + "/")
    page.wait_for_selector("#live[data-frame]")


def tap(page: Any, name: str, count: int) -> None:
    """Tap the class button of ``name`` and wait until it says ``count`` samples."""
    page.click(f'.teach-btn[data-class="{name}"]')
    page.wait_for_selector(f'.teach-btn[data-class="{name}"][data-count="{count}"]')
