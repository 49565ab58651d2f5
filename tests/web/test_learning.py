"""What the page says about learning (issue 19's page side), in a real browser on a phone:
training that ends by itself on a log-scale chart, numbers that are never stale or left over,
how varied each class's samples are, "unknown" with its closest class, and the Review card."""

from __future__ import annotations

from tests.support import photos
from tests.support.mqtt_watch import b64
from tests.web.checks import check_page
from tests.web.conftest import PHONE, log_in, screenshot, tap

# The page's unknown view, read at one moment (scores change several times a second).
_UNKNOWN_VIEW = """() => {
  const now = document.querySelector('.now');
  if (!now.classList.contains('unknown')) return null;
  return {
    label: document.querySelector('#now-class').textContent,
    conf: document.querySelector('#now-conf').textContent,
    greyed: document.querySelector('#scores').classList.contains('unknown'),
    top: document.querySelectorAll('.score.top, .teach-btn.top').length,
    closest: [...document.querySelectorAll('.score.closest')].map((r) => r.dataset.class),
  };
}"""


def test_training_ends_by_itself_then_numbers_go_out_of_date_and_reset(web_daemon, new_page):
    page = new_page(PHONE)
    log_in(page, web_daemon)
    for name in ("cat", "coffee", "rocket"):
        for count in (1, 2):
            tap(page, name, count)
    assert page.inner_text("#loss-text") == "No training yet."
    page.click("#train")
    # A cycle ends by itself when the loss stops improving, and the page says how it ended.
    page.wait_for_selector("#loss-text:has-text('Training finished: ')", timeout=60_000)
    assert page.inner_text("#train") == "Train"
    assert page.get_attribute("#loss-chart", "data-scale") == "log"
    cycle = web_daemon.daemon.status(predicate=lambda s: s["last_cycle"])["last_cycle"]
    page.wait_for_function(  # the last losses may come a moment after the status
        "n => Number(document.querySelector('#loss-chart').dataset.points) >= n",
        arg=cycle["epochs"],
    )
    low, high = map(int, page.get_attribute("#loss-chart", "data-decades").split(","))
    assert low < high <= 1  # whole decades around the losses (each under 10)
    page.wait_for_selector("#accuracy")  # the estimate made when the cycle ended
    assert page.locator("#metrics-stale").count() == 0 and page.locator("#retrain").is_hidden()
    check_page(page, "training finished")
    screenshot(page, "phone-training-finished")

    tap(page, "astronaut", 1)  # the samples changed: what was measured is of other samples
    page.wait_for_selector("#retrain:visible")
    assert page.inner_text("#retrain") == "retrain needed"
    page.wait_for_selector("#metrics-stale")
    assert "out of date" in page.inner_text("#metrics").lower()
    check_page(page, "samples changed")

    page.click("#reset-all")
    page.click("#dialog-ok")
    page.wait_for_selector("#metrics:has-text('No estimate yet')")
    page.wait_for_function("() => document.querySelector('#loss-chart').dataset.points === '0'")
    assert page.locator("#accuracy").count() == 0 and page.locator("#retrain").is_hidden()
    assert "Training finished" not in page.inner_text("#loss-text")
    check_page(page, "every sample forgotten")
    page.reload()  # a page opened now gets no leftover losses or accuracy either
    page.wait_for_selector("#live[data-frame]")
    page.wait_for_selector("#metrics:has-text('No estimate yet')")
    assert page.get_attribute("#loss-chart", "data-points") == "0"


def test_near_identical_samples_say_so_after_the_tap(start_web_daemon, tmp_path, new_page):
    still = photos.replay_folder(tmp_path / "still", ["cat"])  # a still object, a fixed camera
    web = start_web_daemon(frames=still)
    page = new_page(PHONE)
    log_in(page, web)
    tap(page, "cat", 1)
    assert page.locator("#teach-hint").is_hidden()
    tap(page, "cat", 2)
    page.wait_for_selector("#teach-hint:visible")
    hint = page.inner_text("#teach-hint")
    assert hint.startswith("cat: Very like sample #") and "move it or change the light" in hint
    page.wait_for_selector('.teach-btn[data-class="cat"][data-variety="near-identical shots"]')
    assert "near-identical shots" in page.inner_text('.teach-btn[data-class="cat"]')
    label = page.get_attribute('.teach-btn[data-class="cat"]', "aria-label")
    assert label == "cat, 2 samples, near-identical shots"
    check_page(page, "a near-identical sample")


def _newer_item(page, than: int) -> int:
    """The id of a kept picture newer than ``than``, once the page lists one."""
    page.wait_for_function(
        "n => [...document.querySelectorAll('.review-item')].some((e) => +e.dataset.id > n)",
        arg=than, timeout=40_000,
    )  # fmt: skip
    return page.evaluate(
        "n => [...document.querySelectorAll('.review-item')].map((e) => +e.dataset.id)"
        ".find((id) => id > n)",
        than,
    )


def test_unknown_shows_its_closest_class_and_review_labels_what_the_board_kept(
    start_web_daemon, pretrained_bundle, new_page
):
    # Two of the four photos are taught; the replay shows the other two as well: unknown.
    web = start_web_daemon(
        bundle_dir=pretrained_bundle,
        overrides={"model": {"classes": ["cat", "coffee"]}, "camera": {"fps": 5.0}},
    )
    watch = web.daemon.watch
    for name in ("cat", "coffee"):
        for index in (1, 2, 3):
            image = b64(photos.encode(photos.variant(name, index)))
            assert watch.command("sample", {"class": name, "image": image})["ok"]
    page = new_page(PHONE)
    log_in(page, web)

    seen = None
    for _ in range(100):  # an unknown frame comes within a replay cycle (0.8 s)
        seen = page.evaluate(_UNKNOWN_VIEW)
        if seen:
            break
        page.wait_for_timeout(100)
    assert seen, "no unknown frame shown"
    assert seen["label"] == "unknown" and seen["greyed"] and seen["top"] == 0, seen
    assert seen["conf"].startswith("— closest: ") and seen["closest"], seen
    assert seen["conf"] == f"— closest: {seen['closest'][0]}"
    check_page(page, "an unknown frame")

    # The board keeps the unknown frames (one per 10 s per reason, merged when alike), only
    # once it was taught something: before, every frame is unknown.
    page.wait_for_function("() => document.querySelectorAll('.review-item').length >= 1",
                           timeout=40_000)  # fmt: skip
    assert page.inner_text("#review-badge") == page.inner_text("#review-count")
    assert int(page.inner_text("#review-count")) >= 1
    assert page.evaluate(
        "() => [...document.querySelectorAll('.review-item img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    assert page.inner_text(".review-item .why").startswith("The board did not know it")
    check_page(page, "pictures to review")
    screenshot(page, "phone-review")

    labelled = int(page.locator(".review-item").first.get_attribute("data-id"))
    mark = watch.mark()
    page.locator(f'.review-item[data-id="{labelled}"]').locator(
        "button:has-text('New class')"
    ).click()
    page.fill("#dialog-input", "new thing")
    page.click("#dialog-ok")
    page.wait_for_selector('.teach-btn[data-class="new thing"][data-count="1"]')
    event = watch.wait_for("sample", timeout=10, since=mark).json()
    assert event["class"] == "new thing" and event["source"] == "review"
    assert labelled not in [item["id"] for item in watch.command("review", {})["items"]]
    check_page(page, "a kept picture labelled as a new class")

    dismissed = _newer_item(page, labelled)
    page.locator(f'.review-item[data-id="{dismissed}"]').locator(
        "button:has-text('Dismiss')"
    ).click()
    page.wait_for_selector(f'.review-item[data-id="{dismissed}"]', state="detached")
    assert dismissed not in [item["id"] for item in watch.command("review", {})["items"]]

    # A scene still untaught is kept again, and one tap makes it a sample of a class.
    newer = _newer_item(page, dismissed)
    item = page.locator(f'.review-item[data-id="{newer}"]')
    mark = watch.mark()
    chip = item.locator("button.chip:not(.new)").first
    name = chip.inner_text()
    before = int(page.get_attribute(f'.teach-btn[data-class="{name}"]', "data-count"))
    chip.click()
    page.wait_for_selector(f'.teach-btn[data-class="{name}"][data-count="{before + 1}"]')
    assert watch.wait_for("sample", timeout=10, since=mark).json()["source"] == "review"
    check_page(page, "a kept picture labelled")
