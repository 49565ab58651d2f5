"""The region over the live view (issue 21 part 2): drawn, moved and resized with the mouse or a
finger, sent to the daemon, carried by its status; and the whole picture again."""

from __future__ import annotations

import time

import pytest

from tests.support import photos
from tests.web.checks import check_page
from tests.web.conftest import PHONE, log_in, screenshot


@pytest.fixture
def web_daemon(start_web_daemon, tmp_path):
    """The page of a camera whose frames keep one shape (a wide 3:2 photo): the replay of the
    other tests cycles photos of different shapes, and the live view takes each one's shape."""
    return start_web_daemon(frames=photos.replay_folder(tmp_path / "wide", ["cat"]))


def at(page, fx: float, fy: float) -> tuple[float, float]:
    """The viewport point at fractions (fx, fy) of the live view."""
    box = page.locator("#region-layer").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def drawn(page) -> list[float]:
    """The region the page draws, as fractions."""
    return [float(v) for v in page.get_attribute("#region-box", "data-region").split(",")]


def mouse_drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*at(page, *start))
    page.mouse.down()
    page.mouse.move(*at(page, *end), steps=8)
    page.mouse.up()


def touch_drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
    """A one-finger drag as a phone's touch screen sends it (through Chromium's DevTools
    protocol: Playwright's touchscreen only taps): moves 20 ms apart, and the finger rests at
    the end before it lifts, as a finger placing something does. (A finger lifted while still
    moving starts a fling, and Chromium then takes the next tap as the fling's stop, not as a
    click: that is the browser's gesture handling, not the page's.)"""
    cdp = page.context.new_cdp_session(page)
    (x0, y0), (x1, y1) = at(page, *start), at(page, *end)
    clock = time.time()

    def send(kind: str, points: list[tuple[float, float]], after: float) -> None:
        touch = [{"x": x, "y": y} for x, y in points]
        cdp.send("Input.dispatchTouchEvent",
                 {"type": kind, "touchPoints": touch, "timestamp": clock + after})  # fmt: skip

    send("touchStart", [(x0, y0)], 0.0)
    for step in range(1, steps + 1):
        send("touchMove", [(x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps)],
             0.02 * step)  # fmt: skip
    for rest in range(1, 5):
        send("touchMove", [(x1, y1)], 0.02 * steps + 0.05 * rest)
    send("touchEnd", [], 0.02 * steps + 0.3)
    cdp.detach()


def region_in_status(web, mark: int, expected: list[float] | None) -> list[float] | None:
    """The first status after ``mark`` with a region near ``expected`` (None: none)."""

    def near(status: dict) -> bool:
        if expected is None or status["region"] is None:
            return status["region"] is expected
        return status["region"] == pytest.approx(expected, abs=0.002)

    return web.daemon.status(since=mark, predicate=near)["region"]


def test_a_region_drawn_with_the_mouse_is_what_the_model_looks_at(web_daemon, new_page):
    page = new_page()
    log_in(page, web_daemon)
    assert "centre square" in page.inner_text("#region-text")
    page.click("#region-edit")
    assert "never cut or stretched" in page.inner_text("#region-text")
    mouse_drag(page, (0.55, 0.1), (0.95, 0.6))  # outside the offered box: a new one
    assert drawn(page) == pytest.approx([0.55, 0.1, 0.4, 0.5], abs=0.01)
    mouse_drag(page, (0.75, 0.35), (0.65, 0.45))  # inside it: moved, same size
    assert drawn(page) == pytest.approx([0.45, 0.2, 0.4, 0.5], abs=0.01)
    mark = web_daemon.daemon.watch.mark()
    chosen = drawn(page)
    page.click("#region-save")
    assert region_in_status(web_daemon, mark, chosen) == pytest.approx(chosen, abs=0.002)
    page.wait_for_selector("#region-clear:visible")
    assert "padded with black to a square" in page.inner_text("#region-text")
    screenshot(page, "desktop-region")

    mark = web_daemon.daemon.watch.mark()
    page.click("#region-clear")
    assert region_in_status(web_daemon, mark, None) is None
    page.wait_for_selector("#region-box.centre")
    assert page.locator("#region-clear").is_hidden()


def test_a_region_moved_and_resized_with_a_finger(web_daemon, new_page):
    page = new_page(PHONE)
    log_in(page, web_daemon)
    page.locator("#view").scroll_into_view_if_needed()
    page.tap("#region-edit")
    assert drawn(page) == pytest.approx([0.25, 0.25, 0.5, 0.5], abs=0.001)  # offered first
    check_page(page, "choosing a region")
    touch_drag(page, (0.75, 0.75), (0.9, 0.95))  # the bottom right corner's handle
    assert drawn(page) == pytest.approx([0.25, 0.25, 0.65, 0.7], abs=0.01)
    touch_drag(page, (0.5, 0.5), (0.4, 0.45))  # inside: moved
    assert drawn(page) == pytest.approx([0.15, 0.2, 0.65, 0.7], abs=0.01)
    touch_drag(page, (0.5, 0.5), (0.9, 0.9))  # it cannot leave the picture
    assert drawn(page) == pytest.approx([0.35, 0.3, 0.65, 0.7], abs=0.01)
    mark = web_daemon.daemon.watch.mark()
    chosen = drawn(page)
    page.tap("#region-save")
    region = region_in_status(web_daemon, mark, chosen)
    assert region == pytest.approx(chosen, abs=0.002)
    page.wait_for_selector("#region-box:not(.centre)")
    check_page(page, "a region chosen")
    screenshot(page, "phone-region", full_page=False)
    page.reload()  # the region is the daemon's: a page opened later draws it too
    page.wait_for_selector("#live[data-frame]")
    page.wait_for_function(
        "r => document.querySelector('#region-box').dataset.region === r",
        arg=",".join(f"{v:g}" for v in region),
    )
