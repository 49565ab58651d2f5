"""The page in a real browser (Debian's Chromium): what a user on a phone sees and does."""

from __future__ import annotations

import time

from tests.web.conftest import PHONE, log_in, screenshot


def test_login_then_the_live_view_changes(web_daemon, new_page):
    page = new_page(PHONE)
    page.goto(web_daemon.base + "/")
    page.wait_for_url("**/login")
    screenshot(page, "phone-login")
    log_in(page, web_daemon)
    before = page.locator("#live").screenshot()
    first = int(page.get_attribute("#live", "data-frame"))
    changed = False
    deadline = time.monotonic() + 15
    while not changed and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        changed = page.locator("#live").screenshot() != before
    assert changed, "the live view showed the same picture for 15 s"
    assert int(page.get_attribute("#live", "data-frame")) > first
    screenshot(page, "phone-page")


def test_desktop_layout(web_daemon, new_page):
    page = new_page()
    log_in(page, web_daemon)
    page.wait_for_timeout(1500)
    screenshot(page, "desktop-page")
