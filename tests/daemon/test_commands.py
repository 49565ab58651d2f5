"""Commands are parsed into typed objects; every bad one is refused with a reason."""

from __future__ import annotations

import json
import struct
import time
import zlib

import numpy as np
import pytest

from personalizer.commands import (
    COMMAND_NAMES,
    Command,
    CommandError,
    CommandLimits,
    parse_command,
)
from personalizer.commands.payloads import (
    ClassifyPayload,
    ResetPayload,
    SamplePayload,
    SavePayload,
    TrainPayload,
)
from personalizer.engine.handlers import HANDLERS
from personalizer.images import encode_image
from tests.support.mqtt_watch import b64

LIMITS = CommandLimits(max_image_pixels=512 * 512, max_payload_bytes=200_000)


def parse(name: str, payload) -> object:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_command(name, body, LIMITS)


def refused(name: str, payload) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse(name, payload)
    return caught.value


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but that holds almost no data (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_each_command_parses_into_its_typed_payload():
    image = np.full((20, 30, 3), 200, dtype=np.uint8)
    sample = parse("sample", {"class": "cup", "request_id": "a1"})
    assert isinstance(sample, Command) and (sample.name, sample.source) == ("sample", "mqtt")
    assert isinstance(sample.payload, SamplePayload) and sample.payload.class_name == "cup"
    assert sample.request_id == "a1" and sample.payload.image is None
    with_image = parse("sample", {"class": "pen", "image": b64(encode_image(image, "PNG"))})
    assert np.array_equal(with_image.payload.image, image)
    start = parse("train", {"action": "start"}).payload
    assert isinstance(start, TrainPayload) and start.action == "start"
    assert parse("train", {"action": "stop", "request_id": 7}).request_id == 7
    classify = parse("classify", {"image": b64(encode_image(image))}).payload
    assert isinstance(classify, ClassifyPayload) and classify.image.shape == (20, 30, 3)
    one = parse("reset", {"class": "cup"}).payload
    assert isinstance(one, ResetPayload) and (one.class_name, one.all) == ("cup", False)
    assert parse("reset", {"all": True}).payload.class_name is None
    assert isinstance(parse("save", {}).payload, SavePayload)


def test_every_command_has_a_payload_model_and_a_handler():
    assert set(HANDLERS) == set(COMMAND_NAMES)
    assert set(COMMAND_NAMES) >= {"sample", "train", "classify", "reset", "save"}


def test_a_button_builds_the_same_command_as_mqtt():
    local = Command.local("sample", {"class": "cup"}, "button")
    remote = parse("sample", {"class": "cup"})
    assert local.payload == remote.payload and local.source == "button"
    with pytest.raises(CommandError, match='sample needs "class"'):
        Command.local("sample", {}, "button")


def test_data_url_prefix_is_accepted():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    data = "data:image/png;base64," + b64(encode_image(image, "PNG"))
    assert parse("classify", {"image": data}).payload.image.shape == (8, 8, 3)


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("sample", b"class=cup", "payload is not JSON"),
        ("sample", b"\xff\xfe", "payload is not JSON"),
        ("sample", b"", "payload is not JSON"),
        ("sample", [1, 2], "payload must be a JSON object, not list"),
        ("sample", {"class": 3}, '"class" must be a string, not int'),
        ("sample", {}, 'sample needs "class"'),
        ("sample", {"class": "cup", "class_name": "cup"}, "unknown field(s) class_name"),
        ("sample", {"class": "cup", "command": "train"}, "unknown field(s) command"),
        ("sample", {"class": "cup", "colour": 1}, "unknown field(s) colour for sample"),
        ("sample", {"class": "cup", "request_id": [1]}, "request_id must be a string or a number"),
        ("train", {"action": "go"}, '"action" must be "start" or "stop", not "go"'),
        ("train", {}, 'train needs "action"'),
        ("classify", {}, 'classify needs "image"'),
        ("classify", {"image": 5}, '"image" must be a string (base64 JPEG, PNG or WebP), not int'),
        ("classify", {"image": "!!not base64!!"}, "image is not valid base64"),
        ("classify", {"image": b64(b"GIF89a not an image")}, "image is not a JPEG, PNG or WebP"),
        ("classify", {"image": b64(b"")}, "image is empty"),
        ("reset", {}, 'reset needs either {"class": "<name>"} or {"all": true}'),
        ("reset", {"all": True, "class": "cup"}, "reset needs either"),
        ("reset", {"all": "yes"}, '"all" must be true or false'),
        ("save", {"now": True}, "unknown field(s) now for save"),
        ("reboot", {}, 'unknown command "reboot"; the commands are sample, train, classify'),
    ],
)
def test_bad_commands_are_refused_with_a_reason(name, payload, reason):
    assert reason in refused(name, payload).reason


def test_request_id_is_kept_when_the_rest_is_refused():
    error = refused("sample", {"class": 5, "request_id": "x9"})
    assert error.request_id == "x9"


def test_oversized_payload_is_refused_before_parsing():
    error = refused("classify", b"{" + b" " * 300_000 + b"}")
    assert "payload is 300002 bytes, more than the limit of 200000" in error.reason


def test_truncated_or_damaged_image_is_refused():
    jpeg = encode_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    error = refused("classify", {"image": b64(jpeg[: len(jpeg) // 2])})
    assert "could not be decoded" in error.reason


def test_image_with_too_many_pixels_is_refused_from_its_header_alone():
    bomb = png_header_only(60_000, 60_000)  # 3.6 gigapixels claimed, ~100 bytes sent
    started = time.monotonic()
    error = refused("classify", {"image": b64(bomb)})
    assert time.monotonic() - started < 0.5
    assert "more than the limit of 262144 pixels (mqtt.max_image_pixels)" in error.reason
    too_big = encode_image(np.zeros((600, 600, 3), dtype=np.uint8), "PNG")
    error = refused("sample", {"class": "cup", "image": b64(too_big)})
    assert "image is 600x600 = 360000 pixels, more than the limit of 262144 pixels" in error.reason
    # Below Pillow's own bomb limit, the header check alone refuses it, before any decoding.
    claimed = png_header_only(5_000, 5_000)
    error = refused("classify", {"image": b64(claimed)})
    assert "image is 5000x5000 = 25000000 pixels, more than the limit" in error.reason
