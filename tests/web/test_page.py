"""The page in a real browser (Debian's Chromium): what a user on a phone sees and does."""

from __future__ import annotations

import time

from tests.support import photos
from tests.support.daemon_harness import CLASSES
from tests.support.mqtt_watch import b64
from tests.web.conftest import PHONE, log_in, screenshot, tap


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


def test_a_class_button_takes_a_sample_from_the_web(web_daemon, new_page):
    page = new_page(PHONE)
    log_in(page, web_daemon)
    watch = web_daemon.daemon.watch
    mark = watch.mark()
    button = page.locator('.teach-btn[data-class="coffee"]')
    assert button.get_attribute("data-count") == "0"
    button.click()
    page.wait_for_selector('.teach-btn[data-class="coffee"][data-count="1"]')
    assert "1 sample" in button.inner_text()
    event = watch.wait_for("sample", timeout=10, since=mark).json()
    assert event == {**event, "class": "coffee", "count": 1, "source": "web"}
    button.click()
    page.wait_for_selector('.teach-btn[data-class="coffee"][data-count="2"]')
    assert (
        watch.wait_for("sample", lambda m: m.json()["count"] == 2, 10, mark).json()["source"]
        == "web"
    )
    page.wait_for_selector("#toast.show")
    screenshot(page, "phone-after-sample", full_page=False)
    # The top class's bar is as long as its score says (scores change, so look a few times).
    # Only a frame like the taught ones makes a class top (the others are unknown), so the top
    # row comes and goes as the replay cycles its photos.
    page.wait_for_selector(".score.top")
    bar = """() => { const row = document.querySelector('.score.top');
        if (!row) return null;
        const width = (name) => row.querySelector(name).getBoundingClientRect().width;
        const value = parseFloat(row.querySelector('.value').textContent) / 100;
        return [width('.fill') / width('.track'), value]; }"""
    seen = []
    for _ in range(40):
        page.wait_for_timeout(250)
        drawn_score = page.evaluate(bar)
        if drawn_score is None:
            continue
        seen.append(drawn_score)
        drawn, score = drawn_score
        if score > 0.2 and abs(drawn - score) < 0.05:
            break
    else:
        raise AssertionError(f"no top score bar as long as its score (bar, score): {seen}")


def test_training_until_stopped_from_the_page_moves_the_loss_chart(start_web_daemon, new_page):
    # Training ends by itself when the loss stops improving (test_learning.py); here it runs
    # until the maker presses Stop.
    web_daemon = start_web_daemon(overrides={"training": {"until_stopped": True}})
    page = new_page()
    log_in(page, web_daemon)
    for name in ("cat", "coffee", "rocket"):
        tap(page, name, 1)
    assert page.get_attribute("#loss-chart", "data-points") == "0"
    page.click("#train")
    page.wait_for_selector("#state.training")
    assert page.inner_text("#train") == "Stop"
    points = "() => Number(document.querySelector('#loss-chart').dataset.points)"
    page.wait_for_function(f"{points} >= 3")
    seen = int(page.get_attribute("#loss-chart", "data-points"))
    page.wait_for_function(
        "n => Number(document.querySelector('#loss-chart').dataset.points) > n", arg=seen
    )
    assert page.inner_text("#loss-text").startswith("Training… epoch ")
    web_daemon.daemon.watch.wait_for("loss", timeout=10)
    screenshot(page, "desktop-training")
    page.click("#train")
    page.wait_for_function("() => document.querySelector('#state').textContent === 'idle'")
    assert page.inner_text("#train") == "Train"
    page.wait_for_selector("#loss-text:has-text('Training finished: it was stopped')")


def test_the_gallery_deletes_and_relabels_samples(web_daemon, new_page):
    page = new_page(PHONE)
    log_in(page, web_daemon)
    for count in (1, 2, 3):
        tap(page, "cat", count)
    page.select_option("#gallery-class", "cat")
    page.wait_for_function("() => document.querySelectorAll('#gallery .tile').length === 3")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery .tile img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.locator("#gallery").scroll_into_view_if_needed()
    screenshot(page, "phone-gallery", full_page=False)
    first = page.locator("#gallery .tile").first
    sample_id = first.get_attribute("data-id")
    first.locator(".delete").click()
    page.wait_for_selector('.teach-btn[data-class="cat"][data-count="2"]')
    page.wait_for_function("() => document.querySelectorAll('#gallery .tile').length === 2")
    assert page.locator(f'#gallery .tile[data-id="{sample_id}"]').count() == 0
    moved = page.locator("#gallery .tile").first
    moved.locator("select").select_option("rocket")
    page.wait_for_selector('.teach-btn[data-class="rocket"][data-count="1"]')
    page.wait_for_selector('.teach-btn[data-class="cat"][data-count="1"]')
    page.wait_for_function("() => document.querySelectorAll('#gallery .tile').length === 1")


def test_classes_are_added_renamed_and_removed_from_the_page(start_web_daemon, new_page):
    # Three names for the bundle's four class slots: one is free for a new class.
    web_daemon = start_web_daemon(overrides={"model": {"classes": ["cat", "coffee", "rocket"]}})
    page = new_page(PHONE)
    log_in(page, web_daemon)
    assert page.inner_text("#capacity") == "3 of 4 class slots in use"
    page.fill("#new-class", "mug")
    page.click("#add-class button[type=submit]")
    page.wait_for_selector('.teach-btn[data-class="mug"]')
    page.click('#classes li[data-class="mug"] button:has-text("Rename")')
    page.fill("#dialog-input", "cup")
    page.click("#dialog-ok")
    page.wait_for_selector('.teach-btn[data-class="cup"]')
    assert page.locator('.teach-btn[data-class="mug"]').count() == 0
    page.click('#classes li[data-class="cup"] button:has-text("Remove")')
    page.click("#dialog-ok")
    page.wait_for_function("() => !document.querySelector('.teach-btn[data-class=\"cup\"]')")
    status = web_daemon.daemon.status(predicate=lambda s: "cup" not in s["classes"])
    assert "mug" not in status["classes"]


def test_wrong_passwords_on_the_form_are_refused_and_slowed_down(web_daemon, new_page):
    page = new_page(PHONE)
    page.goto(web_daemon.base + "/login")
    for attempt in range(4):
        page.fill("#password", f"guess {attempt}")
        page.click("button[type=submit]")
        page.wait_for_selector("#message:has-text('Wrong password')")
    assert "wait 1 s" in page.inner_text("#message")
    page.fill("#password", web_daemon.password)
    page.click("button[type=submit]")
    page.wait_for_selector("#message:has-text('Too many wrong passwords')")
    screenshot(page, "phone-login-locked", full_page=False)
    assert page.url.endswith("/login")
    page.wait_for_timeout(1200)
    page.fill("#password", web_daemon.password)
    page.click("button[type=submit]")
    page.wait_for_url(web_daemon.base + "/")


def test_metrics_show_after_an_evaluation(web_daemon, new_page):
    watch = web_daemon.daemon.watch
    for name in CLASSES:  # samples of the four photos, as other clients would send them
        for index in range(4):
            image = photos.photo(name) if index == 0 else photos.variant(name, index)
            result = watch.command("sample", {"class": name, "image": b64(photos.encode(image))})
            assert result["ok"], result
    page = new_page(PHONE)
    log_in(page, web_daemon)
    page.click("#evaluate")
    page.wait_for_selector("#accuracy")
    accuracy = page.inner_text("#accuracy")
    assert accuracy.endswith("%")
    assert page.locator("#metrics table tr").count() == len(CLASSES) + 1
    page.wait_for_timeout(500)
    screenshot(page, "phone-metrics")
