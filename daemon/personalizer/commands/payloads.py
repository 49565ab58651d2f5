"""The command payloads (`<root>/cmd/<name>`), one typed model each, as a discriminated union.

A payload is a JSON object; the topic names the command, and parsing puts that name into the
object's ``command`` tag, so :data:`CommandPayload` picks the model. Fields, defaults and types
are declared here once; images are decoded (size checked from the header first) while the
payload is validated, with the limits passed as ``context={"max_image_pixels": N}``. Whether a
class exists is not checked here: classes change at run time, so the session checks it when the
command runs.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

from ..images import ImageDecodeError, decode_base64, decode_image
from ..model.region import Region
from ..schema import StrictModel

MAX_REQUEST_ID_LENGTH = 200
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096


def _request_id(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("request_id must be a string or a number")
    if isinstance(value, str) and len(value) > MAX_REQUEST_ID_LENGTH:
        raise ValueError(f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
    return value


RequestId = Annotated[StrictStr | StrictInt | StrictFloat | None, BeforeValidator(_request_id)]


def _image(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, np.ndarray):  # a local input (a button, the web page) hands pixels
        return value
    if not isinstance(value, str):
        raise ValueError(
            f'"image" must be a string (base64 JPEG, PNG or WebP), not {type(value).__name__}'
        )
    limit = (info.context or {}).get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS)
    try:
        return decode_image(decode_base64(value), limit)
    except ImageDecodeError as exc:
        raise ValueError(str(exc)) from None


Image = Annotated[np.ndarray, BeforeValidator(_image)]
ClassField = Annotated[StrictStr, Field(alias="class", min_length=1)]


class Payload(StrictModel):
    """What every command takes: an optional ``request_id``, echoed in the result.

    Each command's model documents itself for the generated references (commands/reference.py):
    its docstring (what it does), ``payload`` and ``short`` (what to send, in full and on one
    line), ``answer`` (the result's fields) and ``page`` (whether the web page sends it).
    """

    payload: ClassVar[str] = ""
    answer: ClassVar[str] = ""
    short: ClassVar[str] = ""
    page: ClassVar[bool] = False

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request_id: RequestId = None


class SamplePayload(Payload):
    """`sample`: take the current frame (or `image`) as a sample of class `class`."""

    payload: ClassVar[str] = (
        '`{"class": "cup"}` takes the current camera frame; `{"class": "cup", '
        '"image": "<base64 JPEG/PNG/WebP>"}` uses that image (EXIF orientation '
        "honoured)"
    )
    answer: ClassVar[str] = "`class`, `count`, `sample_id`"
    short: ClassVar[str] = '{"class": "cup"}'
    page: ClassVar[bool] = True

    command: Literal["sample"] = "sample"
    class_name: ClassField
    image: Annotated[Image | None, Field(repr=False)] = None


class TrainPayload(Payload):
    """`train`: start or stop (pause) the background trainer."""

    payload: ClassVar[str] = '`{"action": "start"}` / `{"action": "stop"}`'
    answer: ClassVar[str] = "`state`"
    short: ClassVar[str] = '{"action": "start"|"stop"}'
    page: ClassVar[bool] = True

    command: Literal["train"] = "train"
    action: Literal["start", "stop"]


class ClassifyPayload(Payload):
    """`classify`: classify one given image (the camera is not involved)."""

    payload: ClassVar[str] = '`{"image": "<base64 JPEG/PNG/WebP>"}`'
    answer: ClassVar[str] = "`class` (or unknown), `known`, `confidence`, `scores`"
    short: ClassVar[str] = '{"image": "<base64 JPEG>"}'
    page: ClassVar[bool] = False

    command: Literal["classify"] = "classify"
    image: Annotated[Image, Field(repr=False)]


class ResetPayload(Payload):
    """`reset`: clear one class's samples, or (`all`) every sample and parameter."""

    payload: ClassVar[str] = (
        '`{"class": "cup"}` clears that class; `{"all": true}` clears every sample and parameter'
    )
    answer: ClassVar[str] = "`removed`, `samples`"
    short: ClassVar[str] = '{"class": "cup"} | {"all": true}'
    page: ClassVar[bool] = True

    command: Literal["reset"] = "reset"
    class_name: Annotated[StrictStr | None, Field(alias="class")] = None
    all: StrictBool = False

    @model_validator(mode="after")
    def _one_of(self) -> ResetPayload:
        if self.all == (self.class_name is not None):
            raise ValueError('reset needs either {"class": "<name>"} or {"all": true}')
        return self


class SavePayload(Payload):
    """`save`: write the state to disk now."""

    payload: ClassVar[str] = "`{}`"
    answer: ClassVar[str] = "`path`, `bytes`"
    short: ClassVar[str] = "{}"
    page: ClassVar[bool] = True

    command: Literal["save"] = "save"


SampleId = Annotated[StrictInt, Field(ge=1)]


class SamplesPayload(Payload):
    """`samples`: list the stored samples (ids, class, time, source), optionally of one class,
    a page at a time."""

    payload: ClassVar[str] = '`{}`, optionally `"class"`, `"offset"` (0), `"limit"` (1-500, 100)'
    answer: ClassVar[str] = (
        "`samples` (`id`, `class`, `source` (`fleet`: from another board of the group), "
        "`origin` (the board that took it, with a fleet), `ts`, `image`), `total`, `offset`, "
        "`limit`, `counts`"
    )
    short: ClassVar[str] = '{"class"?: "cup", "offset"?: 0, "limit"?: 100}'
    page: ClassVar[bool] = True

    command: Literal["samples"] = "samples"
    class_name: Annotated[StrictStr | None, Field(alias="class")] = None
    offset: Annotated[StrictInt, Field(ge=0)] = 0
    limit: Annotated[StrictInt, Field(ge=1, le=500)] = 100


class SampleDeletePayload(Payload):
    """`sample_delete`: delete one sample."""

    payload: ClassVar[str] = '`{"id": 7}`'
    answer: ClassVar[str] = "`id`, `class`, `samples`"
    short: ClassVar[str] = '{"id": 7}'
    page: ClassVar[bool] = True

    command: Literal["sample_delete"] = "sample_delete"
    id: SampleId


class RelabelPayload(Payload):
    """`relabel`: move one sample to another class."""

    payload: ClassVar[str] = '`{"id": 7, "class": "pen"}`'
    answer: ClassVar[str] = "`id`, `class`, `from`, `samples`"
    short: ClassVar[str] = '{"id": 7, "class": "pen"}'
    page: ClassVar[bool] = True

    command: Literal["relabel"] = "relabel"
    id: SampleId
    class_name: ClassField


class ThumbnailPayload(Payload):
    """`thumbnail`: the stored JPEG of one sample, or of one frame kept for review (the only
    command that sends an image)."""

    payload: ClassVar[str] = (
        '`{"id": 7}` (a sample) or `{"review_id": 3}` (a frame kept for review): the only '
        "command that sends an image off the board; switch it off with `mqtt.commands`"
    )
    answer: ClassVar[str] = "`id` or `review_id`, `class`, `image` (base64 JPEG)"
    short: ClassVar[str] = '{"id": 7} | {"review_id": 3}'
    page: ClassVar[bool] = False

    command: Literal["thumbnail"] = "thumbnail"
    id: SampleId | None = None
    review_id: SampleId | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ThumbnailPayload:
        if (self.id is None) == (self.review_id is None):
            raise ValueError('thumbnail needs either {"id": N} or {"review_id": N}')
        return self


class ReviewPayload(Payload):
    """`review`: the frames the board was unsure of and kept for a label, newest first."""

    payload: ClassVar[str] = '`{}`, optionally `"offset"` (0), `"limit"` (1-200, 50)'
    answer: ClassVar[str] = (
        "`items` (`id`, `ts`, `last_seen`, `seen`, `reason`, `class`, `scores`, `image`: "
        "whether its picture was kept), `total`"
    )
    short: ClassVar[str] = '{"offset"?: 0, "limit"?: 50}'
    page: ClassVar[bool] = True

    command: Literal["review"] = "review"
    offset: Annotated[StrictInt, Field(ge=0)] = 0
    limit: Annotated[StrictInt, Field(ge=1, le=200)] = 50


class ReviewLabelPayload(Payload):
    """`review_label`: make a kept frame a sample of a class, or dismiss it."""

    payload: ClassVar[str] = (
        '`{"id": 3, "class": "cat"}` makes the kept frame a sample of cat (source `review`); '
        '`{"id": 3, "dismiss": true}` drops it'
    )
    answer: ClassVar[str] = "`id`, and `class`, `count`, `sample_id` (or `dismissed`)"
    short: ClassVar[str] = '{"id": 3, "class": "cat"} | {"id": 3, "dismiss": true}'
    page: ClassVar[bool] = True

    command: Literal["review_label"] = "review_label"
    id: SampleId
    class_name: Annotated[StrictStr | None, Field(alias="class", min_length=1)] = None
    dismiss: StrictBool = False

    @model_validator(mode="after")
    def _one_of(self) -> ReviewLabelPayload:
        if self.dismiss == (self.class_name is not None):
            raise ValueError(
                'review_label needs either {"id": N, "class": "<name>"} or {"id": N, "dismiss": '
                "true}"
            )
        return self


class ClassPayload(Payload):
    """`class`: add, rename or remove a class on the board."""

    payload: ClassVar[str] = (
        '`{"add": "dog"}` (a free slot), `{"rename": "dog", "to": "puppy"}` (keeps '
        'its samples and what was learnt), `{"remove": "dog"}` (deletes its samples, '
        "frees the slot)"
    )
    answer: ClassVar[str] = "`classes`, `capacity`"
    short: ClassVar[str] = '{"add": "dog"} | {"rename": "dog", "to": "puppy"} | {"remove": "dog"}'
    page: ClassVar[bool] = True

    command: Literal["class"] = "class"
    add: Annotated[StrictStr | None, Field(min_length=1)] = None
    rename: Annotated[StrictStr | None, Field(min_length=1)] = None
    to: Annotated[StrictStr | None, Field(min_length=1)] = None
    remove: Annotated[StrictStr | None, Field(min_length=1)] = None

    @model_validator(mode="after")
    def _one_action(self) -> ClassPayload:
        actions = [a for a in ("add", "rename", "remove") if getattr(self, a) is not None]
        if len(actions) != 1 or (self.rename is None) != (self.to is None):
            raise ValueError(
                'class needs exactly one of {"add": "NAME"}, {"rename": "OLD", "to": "NEW"} '
                'or {"remove": "NAME"}'
            )
        return self


class EvaluatePayload(Payload):
    """`evaluate`: estimate the accuracy from the samples now (also published on metrics)."""

    payload: ClassVar[str] = "`{}`"
    answer: ClassVar[str] = "as `<root>/metrics`"
    short: ClassVar[str] = "{}"
    page: ClassVar[bool] = True

    command: Literal["evaluate"] = "evaluate"


def _region(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(
            '"region" must be [x, y, width, height] (fractions of the frame) or null (the whole '
            "frame)"
        )
    return Region.parse(value).as_list()


class RegionPayload(Payload):
    """`region`: look at a region of the frame from now on (kept in the state), or at the whole
    frame again."""

    payload: ClassVar[str] = (
        '`{"region": [0.6, 0.1, 0.3, 0.4]}` (x, y, width, height as fractions of the frame; '
        'padded to a square, never cropped or stretched), `{"region": null}`: the whole frame'
    )
    answer: ClassVar[str] = "`region`"
    short: ClassVar[str] = '{"region": [x, y, width, height] | null}'
    page: ClassVar[bool] = True

    command: Literal["region"] = "region"
    region: Annotated[list[float] | None, BeforeValidator(_region)]


CommandPayload = Annotated[
    SamplePayload
    | TrainPayload
    | ClassifyPayload
    | ResetPayload
    | SavePayload
    | ClassPayload
    | SamplesPayload
    | SampleDeletePayload
    | RelabelPayload
    | ThumbnailPayload
    | EvaluatePayload
    | RegionPayload
    | ReviewPayload
    | ReviewLabelPayload,
    Field(discriminator="command"),
]
PAYLOADS: dict[str, type[Payload]] = {
    typing.get_args(model.model_fields["command"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(CommandPayload)[0])
}
COMMAND_NAMES: tuple[str, ...] = tuple(PAYLOADS)
PAYLOAD_ADAPTER: TypeAdapter[Any] = TypeAdapter(CommandPayload)


def payload_fields(name: str) -> tuple[str, ...]:
    """The JSON keys the command ``name`` takes (``request_id`` last)."""
    model = PAYLOADS[name]
    keys = [info.alias or key for key, info in model.model_fields.items()]
    keys = [k for k in keys if k not in ("command", "request_id")]
    return (*keys, "request_id")
