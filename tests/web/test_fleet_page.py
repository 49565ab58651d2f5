"""The page of a board in a fleet group (issue 23's page side), in a real browser on a phone:
the status card names the group, its samples and when another board was last heard, and the
gallery says which board took a sample."""

from __future__ import annotations

from tests.support.bad_fleet_messages import good_sample
from tests.web.checks import check_page
from tests.web.conftest import PHONE, log_in

GROUP, OTHER, UID = "workshop", "kitchen", "ab" * 16


def test_the_status_names_the_group_and_the_gallery_the_board_a_sample_came_from(
    start_web_daemon, broker, new_page
):
    web = start_web_daemon(overrides={"fleet": {"group": GROUP, "board": "bench"}})
    page = new_page(PHONE)
    log_in(page, web)
    page.wait_for_selector("#status dt:has-text('Fleet')")
    fleet = page.locator("#status dt:has-text('Fleet') + dd")
    assert fleet.inner_text() == f"{GROUP}: 0 samples, no other board heard yet"

    topic = f"personalizer-fleet/{GROUP}/{OTHER}/s/{UID}"
    watch = web.daemon.watch
    watch.client.publish(topic, good_sample(board=OTHER, uid=UID, name="cat"), 1, True)
    web.daemon.status(predicate=lambda s: s["samples"].get("cat") == 1)
    page.wait_for_function(
        "() => document.querySelector('#status dt + dd') && [...document.querySelectorAll("
        "'#status dd')].some((d) => d.textContent.includes('from 1 other board'))"
    )
    assert fleet.inner_text() == f"{GROUP}: 1 sample, 1 from 1 other board, heard just now"

    page.select_option("#gallery-class", "cat")
    page.wait_for_selector(f".tile .meta:has-text('fleet: {OTHER}')")
    check_page(page, "a board in a fleet group")
