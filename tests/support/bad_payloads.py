"""Seeded generator of bad MQTT command payloads: every one must be refused by the daemon.

Each payload is invalid *by construction* for the command it is made for (so a test that sees
`ok: true` has found a real bug, not a lucky valid payload): random bytes, invalid UTF-8, payloads
over the size limit, huge strings, deep nesting, non-object JSON, wrong field types, unknown
fields, bad `request_id`s, and images that are truncated, not images, not base64, or
decompression bombs (a header claiming more pixels than allowed, and a real, tiny PNG of
millions of pixels).
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from tests.support.photos import encode, photo

# What the daemon under test is configured with (the fuzz test writes the same values).
CLASSES = ("cat", "coffee", "rocket", "astronaut")
MAX_PAYLOAD_BYTES = 65536
MAX_IMAGE_PIXELS = 1_000_000
UNKNOWN_COMMANDS = ("unknown", "Sample", "sampels", "train_now", "rm -rf", "ünïcode", "save.")

WRONG_TYPES: tuple[object, ...] = (0, -1, 3.5, 1e308, True, False, [], ["cat"], {}, {"a": 1})
BAD_CLASS_NAMES = ("", "Cat", " cat", "cat ", "cat\u0000", "dog", "class_0", "cat/coffee", "☃")


@dataclass(frozen=True)
class Payload:
    """One generated payload, with the kind of defect it carries (for failure messages)."""

    kind: str
    data: bytes


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims `width` x `height` pixels, with one tiny IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_header_bomb(width: int, height: int) -> bytes:
    """A JPEG start whose SOF0 segment claims `width` x `height` pixels (no real scan data)."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


class _Images:
    """Real encoded photos and the broken variants made from them (built once)."""

    def __init__(self) -> None:
        image = photo("cat", 64)
        self.jpeg = encode(image, "JPEG")
        self.png = encode(image, "PNG")
        other = io.BytesIO()
        Image.fromarray(image).save(other, format="GIF")
        self.gif = other.getvalue()
        other = io.BytesIO()
        Image.fromarray(image).save(other, format="BMP")
        self.bmp = other.getvalue()
        # A real PNG bomb: 3000x3000 one-bit pixels (9x the cap) compress to about 1 kB.
        bomb = io.BytesIO()
        Image.new("1", (3000, 3000)).save(bomb, format="PNG", optimize=True)
        self.real_bomb = bomb.getvalue()
        assert len(self.real_bomb) < 8192


_IMAGES: _Images | None = None


def _images() -> _Images:
    global _IMAGES
    if _IMAGES is None:
        _IMAGES = _Images()
    return _IMAGES


def bad_image_text(rng: random.Random) -> tuple[str, str]:
    """(kind, value of an "image" field) that no decoder may accept."""
    images = _images()
    choice = rng.randrange(9)
    if choice == 0:  # truncated: never keep the last 10% (the end may be padding)
        source = rng.choice((images.jpeg, images.png))
        return "image_truncated", _b64(source[: rng.randint(0, int(len(source) * 0.9))])
    if choice == 1:  # a damaged header (damaged pixel data can decode, as garbage: fine)
        source = bytearray(images.png)
        spot = rng.randrange(12, 33)  # the IHDR chunk: type, size, depth, colour type, CRC
        source[spot] ^= rng.randrange(1, 256)
        return "image_damaged_header", _b64(bytes(source))
    if choice == 2:
        return "not_image_random", _b64(rng.randbytes(rng.randint(1, 3000)))
    if choice == 3:
        return "not_image_format", _b64(rng.choice((images.gif, images.bmp)))
    if choice == 4:
        text = rng.choice(("hello", "<svg/>", "%PDF-1.4", "GIF89a", '{"class": "cat"}'))
        return "not_image_text", _b64(text.encode())
    if choice == 5:
        return "not_base64", rng.choice(("!!!!", "abc", "=" * 8, "data:image/png;base64,@@", " "))
    if choice == 6:
        side = rng.randint(1001, 60000)
        return "bomb_png_header", _b64(png_header_bomb(side, rng.randint(1001, 60000)))
    if choice == 7:
        return "bomb_jpeg_header", _b64(jpeg_header_bomb(rng.randint(1001, 65000), 65000))
    return "bomb_png_real", _b64(images.real_bomb)


def _random_key(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz_-ÄßЖ☃\u0000\u202e"
    return "x" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))


def _valid_base(command: str, rng: random.Random) -> dict[str, object]:
    """A payload the command would accept (used only with a defect added)."""
    if command == "sample":
        return {"class": rng.choice(CLASSES)}
    if command == "train":
        return {"action": rng.choice(("start", "stop"))}
    if command == "classify":
        return {"image": _b64(_images().jpeg)}
    if command == "reset":
        return rng.choice(({"class": rng.choice(CLASSES)}, {"all": True}))
    if command == "class":
        return rng.choice(({"add": "lamp"}, {"rename": "cat", "to": "kitten"}, {"remove": "cat"}))
    if command == "samples":
        return rng.choice(({}, {"class": rng.choice(CLASSES), "limit": 5}, {"offset": 1}))
    if command in ("sample_delete", "thumbnail"):
        return {"id": 1}
    if command == "relabel":
        return {"id": 1, "class": rng.choice(CLASSES)}
    return {}


# No sample ever gets these ids in the fuzz run (a few samples are taken, ids from 1).
MISSING_IDS = (10**6, 2**31 - 1, 2**53)


def _field_defect(command: str, rng: random.Random) -> Payload:
    """A JSON object whose fields are wrong for `command` (type, value, or combination)."""
    wrong = rng.choice(WRONG_TYPES)
    if command == "sample":
        case = rng.randrange(4)
        if case == 0:
            return Payload("wrong_type", _json({"class": wrong}))
        if case == 1:
            return Payload("bad_class", _json({"class": rng.choice(BAD_CLASS_NAMES)}))
        if case == 2:
            return Payload("missing_field", _json(rng.choice(({}, {"image": None}))))
        kind, image = bad_image_text(rng)
        return Payload(kind, _json({"class": rng.choice(CLASSES), "image": image}))
    if command == "train":
        action = rng.choice((wrong, "START", "", "pause", "start ", None))
        return Payload("bad_action", _json({"action": action} if action is not None else {}))
    if command == "classify":
        if rng.random() < 0.25:
            return Payload("wrong_type", _json({"image": rng.choice((*WRONG_TYPES, None))}))
        kind, image = bad_image_text(rng)
        return Payload(kind, _json({"image": image}))
    if command == "reset":
        document = rng.choice(
            (
                {},
                {"all": False},
                {"all": rng.choice(("true", 1, 0, None, [True]))},
                {"all": True, "class": rng.choice(CLASSES)},
                {"class": wrong},
                {"class": rng.choice(BAD_CLASS_NAMES)},
                {"class": rng.choice(BAD_CLASS_NAMES), "all": False},
            )
        )
        return Payload("bad_reset", _json(document))
    if command in ("save", "evaluate"):
        return Payload("unknown_key", _json({rng.choice(("all", "path", "class")): wrong}))
    if command == "class":
        document = rng.choice(
            (
                {},
                {"add": wrong},
                {"add": ""},
                {"add": rng.choice(CLASSES)},  # exists already
                {"rename": rng.choice(CLASSES)},  # no "to"
                {"rename": "dog", "to": "wolf"},  # no such class
                {"rename": CLASSES[0], "to": rng.choice(CLASSES[1:])},  # the name is taken
                {"remove": rng.choice(BAD_CLASS_NAMES)},
                {"add": "lamp", "remove": rng.choice(CLASSES)},  # two actions
                {"to": "x"},
            )
        )
        return Payload("bad_class_change", _json(document))
    if command == "samples":
        document = rng.choice(
            (
                {"offset": rng.choice((-1, "1", 1.5, None, True))},
                {"limit": rng.choice((0, 501, -3, "10", 2.5, True))},
                {"class": rng.choice((*BAD_CLASS_NAMES[1:], wrong))},
            )
        )
        return Payload("bad_listing", _json(document))
    if command in ("sample_delete", "thumbnail"):
        value = rng.choice((*MISSING_IDS, 0, -1, "1", 1.0, True, None, [1]))
        return Payload("bad_id", _json({} if value is None else {"id": value}))
    if command == "relabel":
        document = rng.choice(
            (
                {"id": rng.choice(MISSING_IDS), "class": rng.choice(CLASSES)},
                {"id": 1, "class": rng.choice(BAD_CLASS_NAMES)},
                {"id": rng.choice(("1", 0, -2, 1.5)), "class": rng.choice(CLASSES)},
                {"class": rng.choice(CLASSES)},
                {"id": 1},
            )
        )
        return Payload("bad_relabel", _json(document))
    return Payload("valid_for_another_command", _json(_valid_base("sample", rng)))


def _huge_string(command: str, rng: random.Random) -> Payload:
    text = "".join(rng.choice("AB/+=é") for _ in range(8)) * rng.randint(500, 3000)
    key = {"sample": "class", "train": "action", "classify": "image", "reset": "class"}
    return Payload("huge_string", _json({key.get(command, "note"): text}))


def _deep_nesting(command: str, rng: random.Random) -> Payload:
    depth = rng.choice((rng.randint(2, 900), rng.randint(1000, 30000)))
    if rng.random() < 0.3:  # unbalanced as well as deep
        return Payload("deep_nesting", b"[" * depth)
    inner = "[" * depth + "]" * depth
    if rng.random() < 0.5:
        inner = '{"a":' * depth + "1" + "}" * depth
    key = {"sample": "class", "train": "action", "classify": "image", "reset": "all"}
    return Payload("deep_nesting", f'{{"{key.get(command, "x")}": {inner}}}'.encode())


def _generators() -> list[Callable[[str, random.Random], Payload]]:
    def random_bytes(command: str, rng: random.Random) -> Payload:
        # 0xff never occurs in UTF-8, so this is never text, let alone JSON.
        return Payload("random_bytes", b"\xff" + rng.randbytes(rng.randint(0, 500)))

    def invalid_utf8(command: str, rng: random.Random) -> Payload:
        bad = rng.choice(
            (b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80")
        )
        return Payload("invalid_utf8", b'{"class": "c' + bad + b'at", "action": "st' + bad + b'"}')

    def too_large(command: str, rng: random.Random) -> Payload:
        size = rng.randint(MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES + 4000)
        return Payload("over_size_limit", b'{"class": "' + b"A" * size + b'"}')

    def not_an_object(command: str, rng: random.Random) -> Payload:
        document = rng.choice((0, 1.5, "cat", None, True, [], ["cat"], [{"class": "cat"}]))
        text = rng.choice((_json(document), b"", b" ", b"NaN", b"{", b'{"class": "cat"', b"{}}"))
        return Payload("not_an_object", text)

    def unknown_key(command: str, rng: random.Random) -> Payload:
        document = _valid_base(command, rng)
        document[_random_key(rng)] = rng.choice((*WRONG_TYPES, "x", None))
        return Payload("unknown_key", _json(document))

    def bad_request_id(command: str, rng: random.Random) -> Payload:
        document = _valid_base(command, rng)
        document["request_id"] = rng.choice(([1], {"id": 1}, True, False, "r" * 201))
        return Payload("bad_request_id", _json(document))

    return [
        random_bytes,
        invalid_utf8,
        too_large,
        not_an_object,
        unknown_key,
        bad_request_id,
        _huge_string,
        _deep_nesting,
        _field_defect,
        _field_defect,  # twice: it carries the per-command cases, images among them
        _field_defect,
    ]


def bad_payloads(command: str, count: int, seed: int) -> list[Payload]:
    """`count` payloads that `command` must refuse; the same seed gives the same payloads.

    For an unknown command, even payloads valid for a real command must be refused.
    """
    rng = random.Random(f"{seed}-{command}")
    generators = _generators()
    return [rng.choice(generators)(command, rng) for _ in range(count)]
