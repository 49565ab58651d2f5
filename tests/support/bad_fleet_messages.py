"""Group messages that no board may take: each is wrong by construction (for the fleet tests,
in-process and on a real broker). A board must refuse each, say why, and change nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass

from personalizer.fleet.records import SampleRecord, encode
from tests.support.bad_payloads import jpeg_header_bomb
from tests.support.photos import encode as encode_image
from tests.support.photos import photo

UID = "0123456789abcdef" * 2
TS = 1_795_000_000.0


@dataclass(frozen=True)
class BadMessage:
    """``payload`` on ``<group>/<suffix>``, wrong because of ``kind``."""

    kind: str
    suffix: str
    payload: bytes


def _line(**fields: object) -> bytes:
    return json.dumps({"v": 1, **fields}).encode()


def good_sample(board: str = "x", uid: str = UID, name: str = "cat") -> bytes:
    """A sample record of ``board`` that a board takes (to check one still is)."""
    jpeg = encode_image(photo(name, 96))
    return encode(SampleRecord(uid, board, name, TS, (TS, board), jpeg))


def bad_messages(max_payload_bytes: int) -> list[BadMessage]:
    """Every kind of bad group message, under board ``x``."""
    jpeg = encode_image(photo("cat", 64))
    sample = {"kind": "sample", "uid": UID, "origin": "x", "class": "cat", "created": TS,
              "ts": TS, "by": "x"}  # fmt: skip
    topic = f"x/s/{UID}"

    def with_(**changes: object) -> bytes:
        return _line(**{**sample, **changes}) + b"\n" + jpeg

    return [
        BadMessage("not json", topic, b"hello\n" + jpeg),
        BadMessage("json list", topic, b"[1, 2]\n" + jpeg),
        BadMessage("deep nesting", topic, b"[" * 3000 + b"]" * 3000 + b"\n" + jpeg),
        BadMessage("no line break", topic, b"{" + b" " * 5000),
        BadMessage("other format version", topic, with_(v=2)),
        BadMessage("uid not the topic's", topic, with_(uid="f" * 32)),
        BadMessage("not a uid", "x/s/zz", with_(uid="zz")),
        BadMessage("another board's sample", topic, with_(origin="y")),
        BadMessage("empty class", topic, with_(**{"class": ""})),
        BadMessage("class with control characters", topic, with_(**{"class": "cat\u0007"})),
        BadMessage("class not a string", topic, with_(**{"class": 7})),
        BadMessage("time not a number", topic, with_(ts="soon")),
        BadMessage("time before 1970", topic, with_(ts=-12.0)),
        BadMessage("time after year 5000", topic, with_(created=1e12)),
        BadMessage("time infinite", topic, _line(**sample).replace(str(TS).encode(), b"1e999")),
        BadMessage("board name with a slash", topic, with_(by="a/b")),
        BadMessage("unknown kind", topic, _line(**{**sample, "kind": "photo"})),
        BadMessage("sample without a picture", topic, _line(**sample) + b"\n"),
        BadMessage("picture not an image", topic, _line(**sample) + b"\n" + b"\x00" * 500),
        BadMessage("picture truncated", topic, _line(**sample) + b"\n" + jpeg[: len(jpeg) // 3]),
        BadMessage(
            "decompression bomb", topic, _line(**sample) + b"\n" + jpeg_header_bomb(60000, 60000)
        ),
        BadMessage("label with a picture", topic, _line(**{**sample, "kind": "label"}) + b"\n1"),
        BadMessage("oversized", topic, _line(**sample) + b"\n" + b"\xff" * max_payload_bytes),
        BadMessage("classes not json", "x/classes", b"{"),
        BadMessage(
            "classes of another board", "x/classes", _line(kind="classes", by="y", classes=[])
        ),
        BadMessage(
            "classes not a list", "x/classes", _line(kind="classes", by="x", classes={"a": 1})
        ),
        BadMessage(
            "too many classes",
            "x/classes",
            _line(
                kind="classes",
                by="x",
                classes=[
                    {"name": f"c{i}", "state": "active", "to": None, "ts": TS} for i in range(65)
                ],
            ),
        ),  # fmt: skip
        BadMessage(
            "unknown class state",
            "x/classes",
            _line(
                kind="classes",
                by="x",
                classes=[{"name": "cat", "state": "gone", "to": None, "ts": TS}],
            ),
        ),  # fmt: skip
        BadMessage(
            "rename without a target",
            "x/classes",
            _line(
                kind="classes",
                by="x",
                classes=[{"name": "cat", "state": "renamed", "to": None, "ts": TS}],
            ),
        ),  # fmt: skip
    ]
