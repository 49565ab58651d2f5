"""The fleet in-process: boards with real engines and state databases on an in-process broker
that keeps retained messages (tests/support/fleet_rig.py). The same boards on real mosquitto
brokers: test_fleet_brokers.py."""

from __future__ import annotations

import pytest

from tests.support import photos
from tests.support.fleet_rig import InProcessBroker, fleet_board

TOPICS = "personalizer-fleet/shop"


@pytest.fixture
def hub() -> InProcessBroker:
    """The in-process broker (not named ``broker``: that fixture is a real mosquitto, and
    these tests belong in the fast lane)."""
    return InProcessBroker()


def teach(board, name: str, shots: int, first: int = 0) -> list[int]:
    return [
        board.run("sample", {"class": name, "image": photos.variant(name, i)})["sample_id"]
        for i in range(first, first + shots)
    ]


def test_a_sample_taught_on_one_board_reaches_another_as_a_fleet_sample(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    teach(a, "cat", 2)
    teach(a, "rocket", 1)
    assert b.counts == {"cat": 2, "coffee": 0, "rocket": 1, "astronaut": 0}
    listed = b.listing()
    assert {(s["source"], s["origin"]) for s in listed} == {("fleet", "a")}
    assert {(s["source"], s["origin"]) for s in a.listing()} == {("mqtt", "a")}
    assert len(hub.under(f"{TOPICS}/a/s/")) == 3
    assert hub.under(f"{TOPICS}/b/") == {}
    status = b.fleet.status()
    assert status["samples"] == 3 and status["from_others"] == 3 and status["boards"] == ["a"]


def test_boards_with_different_bundles_share_each_embedding_with_its_own_base(
    tmp_path, hub, bundle, spatial_bundle
):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, spatial_bundle, "b")
    teach(a, "coffee", 2)
    teach(b, "cat", 1)
    assert a.counts["cat"] == 1 and b.counts["coffee"] == 2
    snapshot = b.rig.model.sample_snapshot()
    assert {tuple(x.shape) for x in snapshot.bottlenecks} == {b.rig.model.bottleneck_shape}
    assert b.rig.model.bottleneck_shape != a.rig.model.bottleneck_shape


def test_a_deletion_and_a_relabel_on_any_board_reach_every_board(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    c = fleet_board(tmp_path, hub, bundle, "c")
    teach(a, "cat", 3)
    on_b = {s["id"] for s in b.listing()}
    first, second = sorted(on_b)[:2]
    b.run("sample_delete", {"id": first})  # on a board that did not take it
    b.run("relabel", {"id": second, "class": "coffee"})
    for board in (a, b, c):
        assert board.counts["cat"] == 1 and board.counts["coffee"] == 1, board.fleet.config.board
    # The board that took the deleted sample replaced its record with a tombstone: the picture
    # left the hub.
    records = hub.under(f"{TOPICS}/a/s/")
    assert sum(1 for payload in records.values() if b'"kind":"deleted"' in payload) == 1
    assert sum(1 for payload in records.values() if b'"kind":"sample"' in payload) == 2


def test_a_class_rename_and_removal_reach_every_board_and_late_joiners(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    teach(a, "cat", 2)
    teach(b, "rocket", 2)
    a.run("class", {"rename": "cat", "to": "kitty"})
    assert b.counts == {"kitty": 2, "coffee": 0, "rocket": 2, "astronaut": 0}
    late = fleet_board(tmp_path, hub, bundle, "late")
    assert late.counts == b.counts
    b.run("class", {"remove": "rocket"})
    for board in (a, b, late):
        assert "rocket" not in board.counts and sum(board.counts.values()) == 2
    # b took the rocket samples: their pictures left the hub with the class.
    assert all(b'"kind":"deleted"' in p for p in hub.under(f"{TOPICS}/b/s/").values())
    again = fleet_board(tmp_path, hub, bundle, "again")
    assert again.counts.get("kitty") == 2 and "rocket" not in again.counts


def test_a_class_added_on_one_board_is_added_on_the_others(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    a.run("class", {"remove": "astronaut"})
    a.run("class", {"add": "mug"})
    assert "mug" in b.counts and "astronaut" not in b.counts


def test_a_board_that_was_away_catches_up_from_the_retained_messages(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    taken = teach(a, "cat", 3)
    b.client.disconnect()
    teach(a, "coffee", 2)
    a.run("sample_delete", {"id": taken[0]})
    a.run("class", {"rename": "cat", "to": "kitty"})
    assert b.counts["cat"] == 3
    b.client.connect()
    hub.settle()
    assert b.counts == a.counts == {"kitty": 2, "coffee": 2, "rocket": 0, "astronaut": 0}


def test_records_give_the_same_result_in_any_order(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    teach(a, "cat", 2)
    sample = min(s["id"] for s in b.listing())
    b.run("relabel", {"id": sample, "class": "rocket"})  # b's label is newer than a's sample
    a.run("class", {"rename": "rocket", "to": "ship"})  # and the class is renamed after
    messages = list(hub.retained.items())
    results = []
    for order, name in ((messages, "forward"), (messages[::-1], "backward")):
        fresh = InProcessBroker()
        fresh.retained = dict(order)
        board = fleet_board(tmp_path, fresh, bundle, name)
        results.append(board.counts)
    assert results[0] == results[1] == a.counts == b.counts
    assert a.counts["ship"] == 1 and a.counts["cat"] == 1


def test_the_last_change_to_a_sample_wins_and_a_deletion_is_final(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    teach(a, "cat", 1)
    on_a, on_b = a.listing()[0]["id"], b.listing()[0]["id"]
    b.client.disconnect()
    a.run("relabel", {"id": on_a, "class": "coffee"})
    b.run("relabel", {"id": on_b, "class": "rocket"})  # later, while apart: it wins
    b.client.connect()
    hub.settle()
    assert a.counts["rocket"] == b.counts["rocket"] == 1
    a.client.disconnect()
    b.run("sample_delete", {"id": on_b})
    a.run("relabel", {"id": on_a, "class": "astronaut"})  # later, but the sample was deleted
    a.client.connect()
    hub.settle()
    assert sum(a.counts.values()) == sum(b.counts.values()) == 0


def test_a_follow_board_takes_the_group_and_publishes_nothing(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    f = fleet_board(tmp_path, hub, bundle, "f", mode="follow")
    teach(a, "cat", 2)
    teach(f, "rocket", 1)
    f.run("sample_delete", {"id": f.listing()[0]["id"]})  # a group sample, deleted here only
    assert [p for p in hub.published if p[0] == "f"] == []
    assert a.counts["cat"] == 2 and a.counts["rocket"] == 0
    assert f.counts["cat"] == 1 and f.counts["rocket"] == 1
    f.client.disconnect()
    f.client.connect()  # the hub sends the group's samples again: the deleted one stays gone
    hub.settle()
    assert f.counts["cat"] == 1


def test_samples_taken_before_joining_are_published_once(tmp_path, hub, bundle):
    from tests.support.engine import engine_rig

    alone = engine_rig(tmp_path / "a", bundle)
    for i in range(3):
        alone.run("sample", {"class": "cat", "image": photos.variant("cat", i)})
    alone.store.close()
    a = fleet_board(tmp_path, hub, bundle, "a")
    assert len(hub.under(f"{TOPICS}/a/s/")) == 3
    joined = a.fleet.status()["joined"]
    assert joined["published"] == 3 and joined["group"] == "shop" and joined["mode"] == "share"
    a.rig.store.close()
    count = len(hub.published)
    again = fleet_board(tmp_path, hub, bundle, "a")  # the same state, started again
    assert len(hub.published) == count, "published once, not at every start"
    assert again.fleet.status()["joined"]["published"] == 3


def test_the_group_limit_bounds_what_a_board_takes(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b", max_samples=3)
    teach(a, "cat", 5)
    assert b.counts["cat"] == 3
    left_out = b.fleet.status()["left_out"]
    assert left_out["limit"] == 2 and "fleet.max_samples" in left_out["last"]
    teach(b, "rocket", 2)  # what is taught on the board itself is never refused
    assert b.counts["rocket"] == 2
    b.client.disconnect()
    b.client.connect()  # sent again: still counted once each
    hub.settle()
    assert b.fleet.status()["left_out"]["limit"] == 2


def test_tombstones_are_bounded(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a", max_tombstones=10)
    taken = teach(a, "cat", 14)
    for sample_id in taken:
        a.run("sample_delete", {"id": sample_id})
    tombstones = hub.under(f"{TOPICS}/a/s/")
    assert len(tombstones) == 10 and all(b'"deleted"' in p for p in tombstones.values())
    a.fleet.trim()  # (the command thread's idle time does it every few seconds)
    assert sum(1 for row in a.fleet.ledger.rows.values() if row.deleted) <= 10


def test_malformed_and_oversized_group_messages_are_refused_without_harm(tmp_path, hub, bundle):
    from tests.support.bad_fleet_messages import UID, bad_messages, good_sample

    board = fleet_board(tmp_path, hub, bundle, "b", max_payload_bytes=64 * 1024)
    bad = bad_messages(64 * 1024)
    for message in bad:
        hub.publish("x", f"{TOPICS}/{message.suffix}", message.payload)
        hub.settle()
        assert sum(board.counts.values()) == 0, message.kind
        assert board.fleet.ledger.rows == {}, message.kind
        last = board.fleet.status()["left_out"]["last"]
        # The reason names the message's topic, or the sample whose picture cannot be used.
        assert f"{TOPICS}/{message.suffix}" in last or f"sample {UID}" in last, (message.kind, last)
    assert board.counts == {"cat": 0, "coffee": 0, "rocket": 0, "astronaut": 0}
    # Counted once per topic (a record that cannot be read) or sample (a picture that cannot be
    # used), so the hub sending them again at a reconnect does not count them twice.
    assert board.fleet.status()["left_out"]["refused"] == 4
    hub.publish("x", f"{TOPICS}/x/s/{'9' * 32}", good_sample(uid="9" * 32))
    hub.settle()
    assert board.counts["cat"] == 1, "a good message after the bad ones is taken"


def test_a_restarted_board_takes_nothing_twice_and_keeps_what_it_deleted(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b", mode="follow")
    teach(a, "cat", 3)
    b.run("sample_delete", {"id": b.listing()[0]["id"]})
    before = b.listing()
    b.client.disconnect()
    b.rig.store.close()
    again = fleet_board(tmp_path, hub, bundle, "b", mode="follow")
    assert again.listing() == before


def test_a_burst_from_the_group_is_taken_in_short_turns(tmp_path, hub, bundle, monkeypatch):
    from personalizer.fleet import fleet
    from tests.support.bad_fleet_messages import good_sample

    # A short turn, so that 200 samples need several on any machine.
    monkeypatch.setattr(fleet, "TURN_SECONDS", 0.02)
    board = fleet_board(tmp_path, hub, bundle, "b")
    for i in range(1, 201):
        hub.publish("x", f"{TOPICS}/x/s/{i:032x}", good_sample(uid=f"{i:032x}"))
    board.tasks.tasks.pop(0)()  # one turn
    taken = board.counts["cat"]
    assert 0 < taken < 200, "one turn takes some, and leaves the rest for later turns"
    assert len(board.tasks.tasks) == 1, "the next turn is queued behind what came meanwhile"
    turns = 1 + board.tasks.run()
    assert board.counts["cat"] == 200 and turns > 2


@pytest.mark.parametrize("mode", ["share", "follow"])
def test_a_sample_deleted_before_the_fleet_turn_is_never_shared(tmp_path, hub, bundle, mode):
    a = fleet_board(tmp_path, hub, bundle, "a", mode=mode)
    b = fleet_board(tmp_path, hub, bundle, "b")
    # Both commands run before the fleet's turn (queued behind them) sees either change.
    taken = a.rig.run("sample", {"class": "cat", "image": photos.variant("cat", 0)})
    a.rig.run("sample_delete", {"id": taken["sample_id"]})
    hub.settle()
    assert b.counts["cat"] == 0
    assert all(b'"kind":"sample"' not in p for p in hub.under(f"{TOPICS}/a/s/").values())
    assert a.fleet.status()["samples"] == 0
    assert [row.deleted for row in a.fleet.ledger.rows.values()] == [True]


def test_a_deletion_right_after_a_class_removal_still_reaches_the_group(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    teach(a, "cat", 2)
    teach(b, "rocket", 2)
    from_a = sorted(s["id"] for s in b.listing() if s["class"] == "cat")
    # Both commands run before b's fleet turn sees either change.
    b.rig.run("class", {"remove": "rocket"})
    b.rig.run("sample_delete", {"id": from_a[0]})
    hub.settle()
    for board in (a, b):
        assert board.counts["cat"] == 1 and "rocket" not in board.counts, board.fleet.config.board


def test_a_reset_on_a_sharing_board_deletes_those_samples_on_every_board(tmp_path, hub, bundle):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    teach(a, "cat", 2)
    teach(b, "rocket", 2)
    a.run("reset", {"class": "rocket"})
    assert a.counts["rocket"] == b.counts["rocket"] == 0 and b.counts["cat"] == 2
    b.run("reset", {"all": True})
    assert sum(a.counts.values()) == sum(b.counts.values()) == 0
    late = fleet_board(tmp_path, hub, bundle, "late")
    assert sum(late.counts.values()) == 0


def test_samples_imported_into_a_running_board_are_placed_in_the_group(tmp_path, hub, bundle):
    from personalizer.store.exchange import export_state, import_state
    from tests.support.engine import engine_rig

    other = engine_rig(tmp_path / "other", bundle)
    for i in range(2):
        other.run("sample", {"class": "coffee", "image": photos.variant("coffee", i)})
    other.store.close()
    export_state(other.store.path, tmp_path / "other.db")
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    model = a.rig.model
    import_state(tmp_path / "other.db", a.rig.store.path, "merge", model.bundle_id, model.capacity)
    from personalizer.service.loops import reload_if_changed_elsewhere

    reload_if_changed_elsewhere(a.rig.engine)  # what the command thread does when idle
    hub.settle()
    assert a.counts["coffee"] == b.counts["coffee"] == 2
    assert a.fleet.status()["joined"]["published"] == 0, "the join itself published nothing"


def test_a_board_name_that_cannot_be_a_topic_level_and_a_share_without_images_are_refused(
    tmp_path, bundle
):
    from personalizer.config import ConfigError
    from tests.support.engine import config_for

    with pytest.raises(ConfigError, match=r"fleet\.board .*client_id 'board one'.* set fleet"):
        config_for(tmp_path, bundle, fleet={"group": "shop"}, mqtt={"client_id": "board one"})
    with pytest.raises(ConfigError, match=r"fleet\.mode = .*store_images = true"):
        config_for(tmp_path, bundle, fleet={"group": "shop"}, state={"store_images": False})
    with pytest.raises(ConfigError, match=r"fleet\.group = .*one level of the fleet's topics"):
        config_for(tmp_path, bundle, fleet={"group": "a/b"})
    follow = config_for(
        tmp_path, bundle, fleet={"group": "shop", "mode": "follow"}, state={"store_images": False}
    )
    assert follow.fleet.board == follow.mqtt.client_id
    assert "fleet shop (follow, as " in follow.summary()


def test_an_inbox_that_overflowed_asks_the_broker_again_and_misses_nothing(tmp_path, hub, bundle):
    from personalizer.fleet.inbox import Inbox
    from tests.support.bad_fleet_messages import good_sample

    uids = [f"{i:032x}" for i in range(1, 31)]
    for uid in uids:
        hub.publish("x", f"{TOPICS}/x/s/{uid}", good_sample(uid=uid))
    board = fleet_board(tmp_path, hub, bundle, "b", connect=False)
    board.fleet.inbox = Inbox(board.fleet.config.max_payload_bytes, max_messages=8)
    board.client.connect()  # 30 retained messages at once: 22 do not fit
    hub.settle()
    assert board.counts["cat"] == 30
    assert board.client.received > 30 * len(good_sample()), "the broker sent them again"


def test_versions_order_changes_even_when_a_clock_lags(caplog):
    from personalizer.fleet.clock import FleetClock

    clock = FleetClock("slow", now=lambda: 1_700_000_000.0)
    first = clock.next()
    clock.heard((1_800_000_000.0, "fast"))  # a board whose clock is years ahead
    assert clock.next() == (first[0] + 0.001, "slow"), "a version too far ahead drags nothing"
    clock.heard((1_700_000_300.0, "fast"))
    later = clock.next()
    assert later > (1_700_000_300.0, "fast"), "made after hearing it: ordered after it"
    assert (5.0, "b") > (5.0, "a"), "a tie goes to the greater board name"
    unset = FleetClock("new", now=lambda: 86_400.0)
    assert unset.next()[0] == 86_400.0
    assert "clock says 1970-01-02" in caplog.text


def test_a_sample_taken_in_a_class_after_it_was_renamed_elsewhere_stays_in_it(
    tmp_path, hub, bundle
):
    a = fleet_board(tmp_path, hub, bundle, "a")
    b = fleet_board(tmp_path, hub, bundle, "b")
    a.run("class", {"remove": "astronaut"})  # a free class slot on every board
    teach(a, "cat", 2)
    b.client.disconnect()
    a.run("class", {"rename": "cat", "to": "kitty"})
    teach(b, "cat", 1, first=5)  # b has not heard of the rename: a new cat
    b.client.connect()
    hub.settle()
    assert a.counts == b.counts
    assert b.counts["kitty"] == 2 and b.counts["cat"] == 1


def test_a_fleet_that_cannot_write_its_state_at_start_leaves_the_board_running(
    tmp_path, hub, bundle, monkeypatch
):
    from personalizer.errors import StateWriteError
    from personalizer.fleet.ledger import Ledger

    def full_disk(self, share, mode):
        raise StateWriteError("writing the state database failed (No space left on device)")

    monkeypatch.setattr(Ledger, "load", full_disk)
    board = fleet_board(tmp_path, hub, bundle, "b")
    assert (
        "group 'shop' is off until the next start" in board.rig.engine.status.report().warnings[0]
    )
    assert board.run("sample", {"class": "cat", "image": photos.variant("cat", 0)})["count"] == 1
    assert hub.published == []
