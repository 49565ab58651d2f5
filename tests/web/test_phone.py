"""The page on a phone (390 x 844, touch): sixteen classes and a confusion table fit the screen,
every control is big enough for a finger, messages are in plain words, nothing says null, and
a deleted sample can be taken back."""

from __future__ import annotations

from tests.support import photos
from tests.support.mqtt_watch import b64
from tests.web.checks import check_page
from tests.web.conftest import PHONE, WIDE_CLASSES, log_in, screenshot, tap

_TABLE_SCROLLS = """() => { const box = document.querySelector('#metrics .scroll');
    return box.scrollWidth > box.clientWidth; }"""


def teach_by_mqtt(daemon, names, shots: int) -> None:
    """``shots`` samples of each class in ``names``, sent as images over MQTT."""
    pictures = list(photos.PHOTOS)
    for position, name in enumerate(names):
        picture = pictures[position % len(pictures)]
        for shot in range(shots):
            image = photos.variant(picture, 1 + shot + 3 * (position // len(pictures)))
            fields = {"class": name, "image": b64(photos.encode(image))}
            result = daemon.watch.command("sample", fields)
            assert result["ok"], result


def test_sixteen_classes_and_a_confusion_table_fit_a_phone(start_web_daemon, wide_bundle, new_page):
    web = start_web_daemon(
        bundle_dir=wide_bundle, overrides={"model": {"classes": list(WIDE_CLASSES)}}
    )
    page = new_page(PHONE)
    log_in(page, web)
    page.wait_for_function("() => document.querySelectorAll('.teach-btn').length === 16")
    check_page(page, "opened")

    tap(page, "cat", 1)
    assert page.get_by_role("button", name="cat, 1 sample", exact=True).count() == 1
    check_page(page, "a sample taken")

    page.click("#evaluate")  # one sample of one class: nothing to estimate from yet
    page.wait_for_selector("#metrics:has-text('Not enough samples to check yet')")
    check_page(page, "checked with too few samples")

    page.fill("#new-class", "one too many")
    page.click("#add-class button[type=submit]")
    page.wait_for_selector("#toast.show.error")
    assert page.inner_text("#toast-text") == (
        "This model has room for 16 classes: remove one first."
    )
    assert page.inner_text("#capacity").startswith("All 16 class slots are in use")
    check_page(page, "a class refused")

    teach_by_mqtt(web.daemon, WIDE_CLASSES, 2)
    page.wait_for_selector(f'.teach-btn[data-class="{WIDE_CLASSES[-1]}"][data-count="2"]')
    name = page.get_attribute(f'.teach-btn[data-class="{WIDE_CLASSES[-1]}"]', "aria-label")
    assert name.startswith(f"{WIDE_CLASSES[-1]}, 2 samples, "), name  # and how varied
    page.click("#evaluate")
    page.wait_for_selector("#accuracy")
    assert page.locator("#metrics table tr").count() == len(WIDE_CLASSES) + 1
    assert page.evaluate(_TABLE_SCROLLS), "the table should scroll inside its card"
    check_page(page, "a confusion table of 16 classes")
    for width in (360, 430):  # the narrowest and the widest phones in common use
        page.set_viewport_size({"width": width, "height": 844})
        page.wait_for_function(  # laid out again (or too wide: check_page says what sticks out)
            "w => document.documentElement.clientWidth === w"
            " || document.documentElement.scrollWidth > w",
            arg=width,
        )
        check_page(page, f"a confusion table of 16 classes at {width} px")
    page.set_viewport_size(PHONE["viewport"])
    page.locator("#metrics").scroll_into_view_if_needed()
    screenshot(page, "phone-16-classes")

    page.click('.teach-btn[data-class="coffee"]')  # the estimate is now of other samples
    page.wait_for_selector("#metrics-stale")
    assert "Out of date" in page.inner_text("#metrics")
    check_page(page, "metrics out of date")

    page.click('#classes li[data-class="tissue"] button:has-text("Remove")')
    page.click("#dialog-ok")
    page.wait_for_function(
        "() => !document.querySelector('.teach-btn[data-class=\"tissue\"]') && ![...document"
        ".querySelectorAll('#metrics th, #scores .name')].some((e) => e.textContent === 'tissue')"
    )
    assert page.locator("#metrics table tr").count() == len(WIDE_CLASSES)
    check_page(page, "a class removed")

    page.click("#reset-all")
    page.click("#dialog-ok")
    page.wait_for_selector("#metrics:has-text('No estimate yet')")
    assert page.locator("#accuracy").count() == 0
    check_page(page, "every sample forgotten")


def test_a_deleted_sample_can_be_taken_back_and_its_label_is_whole(web_daemon, new_page):
    page = new_page(PHONE)
    log_in(page, web_daemon)
    for count in (1, 2, 3):
        tap(page, "rocket", count)
    page.select_option("#gallery-class", "rocket")
    page.wait_for_function("() => document.querySelectorAll('#gallery .tile').length === 3")
    cut = page.evaluate(
        "() => [...document.querySelectorAll('#gallery .tile .meta span')]"
        ".filter((s) => s.scrollWidth > s.clientWidth + 1).map((s) => s.textContent)"
    )
    assert cut == []
    check_page(page, "the gallery")

    kept, gone = page.locator("#gallery .tile").nth(0), page.locator("#gallery .tile").nth(1)
    kept_id, gone_id = kept.get_attribute("data-id"), gone.get_attribute("data-id")
    kept.locator(".delete").click()
    assert kept.is_hidden()
    page.wait_for_selector("#toast.show #toast-action:has-text('Undo')")
    check_page(page, "a delete waiting")
    page.click("#toast-action")
    assert kept.is_visible()
    gone.locator(".delete").click()
    # The second delete is sent after the undo time; the first (undone) never is.
    page.wait_for_selector('.teach-btn[data-class="rocket"][data-count="2"]')
    page.wait_for_function("() => document.querySelectorAll('#gallery .tile').length === 2")
    assert page.locator(f'#gallery .tile[data-id="{kept_id}"]').is_visible()
    assert page.locator(f'#gallery .tile[data-id="{gone_id}"]').count() == 0
    events = [m.json() for m in web_daemon.daemon.watch.received("status")]
    assert events[-1]["samples"]["rocket"] == 2
    check_page(page, "a sample deleted")
