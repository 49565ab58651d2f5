"""The sections of the board's own devices: `[camera]` (and its region) and `[gpio]`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr

from ..model.region import Region
from ..schema import StrictModel
from .fields import PATH, PasswordSection, credential_setting, password_file_setting, setting
from .values import (
    PIN_HINT,
    CameraDevice,
    ClassName,
    ConfigPath,
    CredentialName,
    Pin,
    StreamUrl,
)


def _region(values: tuple[float, ...]) -> tuple[float, ...]:
    """A region, checked: empty, or [x, y, width, height] inside the frame."""
    return tuple(Region.parse(values).as_list()) if values else ()


class CameraConfig(PasswordSection):
    """`[camera]`: where frames come from."""

    source: Annotated[
        Literal["auto", "picamera2", "opencv", "stream", "replay"],
        setting(
            'Where frames come from: "auto" (picamera2, then OpenCV, then replay if `path` is '
            'set), "picamera2" (Raspberry Pi camera module), "opencv" (USB camera, Coral Dev '
            'Board camera), "stream" (a network camera: RTSP or HTTP MJPEG, see `url`) or '
            '"replay" (a folder of JPEG/PNG images, or a video file, played in a loop: for '
            "testing)."
        ),
    ] = "auto"
    device: Annotated[
        CameraDevice,
        setting('OpenCV camera: a device path such as "/dev/video0", or its index (0).'),
    ] = "/dev/video0"
    path: Annotated[
        ConfigPath,
        setting(
            "Replay: a folder of .jpg/.jpeg/.png images (played in name order) or a video file "
            "(needs OpenCV). Empty: no replay.",
            allowed=PATH,
            toml='""',
        ),
    ] = None
    width: Annotated[
        StrictInt,
        setting(
            "Frame size asked of the camera. Leave width and height out (the default) and the "
            "camera delivers the smallest frames that cover the model's input (picamera2: the "
            "ISP scales to exactly the model's size; USB cameras: the smallest mode at or above "
            "it; replay: images scaled to it), which costs the least CPU. Set them for larger "
            "frames (the web page's live view); replayed images are then scaled down to fit.",
            ge=16,
            le=8192,
            commented=True,
        ),
    ] = 640
    height: Annotated[StrictInt, setting("See width.", ge=16, le=8192, commented=True)] = 480
    fps: Annotated[
        float,
        setting(
            "Frames per second asked of the camera (replay plays at exactly this rate).",
            gt=0.0,
            le=1000.0,
        ),
    ] = 10.0
    url: Annotated[
        StreamUrl | None,
        setting(
            'Network camera (source = "stream"): the stream\'s URL, rtsp:// (H.264 or MJPEG) or '
            "http:// / https:// (MJPEG). No user name or password in it: those go in username "
            "and password_file. Use the camera's small substream (e.g. 640x360).",
            allowed='must be a stream URL in quotes, e.g. "rtsp://192.168.1.20:554/stream2"',
            toml='"rtsp://192.168.1.20:554/stream2"',
            commented=True,
        ),
    ] = None
    rtsp_transport: Annotated[
        Literal["tcp", "udp"],
        setting(
            'How RTSP carries the video: "tcp" (one connection, passes firewalls and NAT, no '
            'lost packets) or "udp" (less delay on a clean network, but lost packets show as '
            "broken frames)."
        ),
    ] = "tcp"
    username: Annotated[
        StrictStr, setting("Network camera: the user name to log in with (empty: no login).")
    ] = ""
    password_file: Annotated[ConfigPath, password_file_setting("the network camera's")] = None
    password_credential: Annotated[
        CredentialName,
        credential_setting(
            "camera_password",
            'An empty file (as scripts/install.sh creates) means "no password".',
        ),
    ] = "camera_password"
    region: Annotated[
        tuple[float, ...],
        Field(strict=False),
        AfterValidator(_region),
        setting(
            "The part of the frame the model looks at, as fractions of the frame: [x, y, width, "
            "height], e.g. [0.6, 0.1, 0.3, 0.4] (the right third, near the top). It is padded "
            "with black to a square, never cropped or stretched. Empty (the default): the centre "
            "square of the whole frame. A region set on the web page (drawn over the live view) "
            "is kept in the state; this value only seeds a new state.",
            allowed="must be [] or four fractions [x, y, width, height] inside the frame",
        ),
    ] = ()

    @property
    def region_box(self) -> Region | None:
        """The configured region (None: the centre square of the whole frame)."""
        return Region(*self.region) if self.region else None

    @property
    def explicit_size(self) -> tuple[int, int] | None:
        """(width, height) when the config sets them; None: the camera picks the smallest size
        that covers the model's input (the cheapest frames)."""
        if {"width", "height"} & self.model_fields_set:
            return self.width, self.height
        return None


class PinAssignment(StrictModel):
    """One class's button or LED: `{ class = "cup", pin = 17 }`."""

    class_name: Annotated[
        ClassName,
        Field(
            alias="class", json_schema_extra={"allowed": "must be the name of one of the classes"}
        ),
    ]
    pin: Annotated[Pin, Field(json_schema_extra={"allowed": f"set it to {PIN_HINT}"})]


Assignments = Annotated[tuple[PinAssignment, ...], Field(strict=False)]


def _class_pins(description: str, name: str, pins: tuple[int, int]) -> Any:
    """The setting of a list of ``[[gpio.<name>]]`` tables (a pin per class)."""
    tables = "".join(
        f'[[gpio.{name}]]\nclass = "{c}"\npin = {p}\n'
        for c, p in zip(("cup", "pen"), pins, strict=True)
    )
    allowed = f'must be [[gpio.{name}]] tables, each with class = "cup" and pin = 17'
    return setting(description, allowed=allowed, tables=tables)


class GpioConfig(StrictModel):
    """`[gpio]`: buttons and LEDs through gpiozero. Pins are BCM GPIO numbers (17 = GPIO17,
    header pin 11) or gpiozero pin names ("GPIO17", "BOARD11"). Wire each button between its
    pin and GND."""

    enabled: Annotated[StrictBool, setting("Buttons and LEDs on GPIO pins (gpiozero).")] = False
    pin_factory: Annotated[
        Literal["auto", "lgpio", "rpigpio", "mock"],
        setting(
            '"auto" lets gpiozero pick (lgpio on a Pi 5, RPi.GPIO on older Pis); "lgpio", '
            '"rpigpio" force one; "mock" runs without hardware (tests, the simulator).'
        ),
    ] = "auto"
    class_buttons: Annotated[
        Assignments,
        _class_pins(
            "One button per class: a press takes the current frame as a sample of that class.",
            "class_buttons",
            (17, 27),
        ),
    ] = ()
    train_button: Annotated[
        Pin | None,
        setting(
            "Start/pause training (toggles). Leave it out when not wired.",
            toml="22",
            commented=True,
        ),
    ] = None
    reset_button: Annotated[
        Pin | None,
        setting(
            "Hold to clear everything. Leave it out when not wired.", toml="23", commented=True
        ),
    ] = None
    pull_up: Annotated[
        StrictBool,
        setting(
            "true: buttons connect the pin to GND when pressed (the Pi's internal pull-up is used)."
        ),
    ] = True
    bounce_time: Annotated[
        float,
        setting(
            "Seconds during which further edges of a button are ignored (contact bounce).",
            ge=0.0,
            le=1.0,
            hint=" (seconds)",
        ),
    ] = 0.05
    hold_time: Annotated[
        float,
        setting(
            "Seconds the reset button must be held to clear every sample and parameter. A short "
            "press does nothing harmful.",
            ge=0.5,
            le=30.0,
            hint=" (seconds)",
        ),
    ] = 3.0
    class_leds: Annotated[
        Assignments,
        _class_pins(
            "Optional: one LED per class, lit while that class is the prediction.",
            "class_leds",
            (5, 6),
        ),
    ] = ()
    status_led: Annotated[
        Pin | None,
        setting(
            "The status LED: blinks once per captured sample, pulses while training, blinks "
            "fast while something is wrong (camera down, a warning), flashes three times after "
            "a reset.",
            toml="24",
            commented=True,
        ),
    ] = None

    def pins(self) -> list[int | str]:
        """Every pin this configuration uses."""
        used = [a.pin for a in (*self.class_buttons, *self.class_leds)]
        used += [
            p for p in (self.train_button, self.reset_button, self.status_led) if p is not None
        ]
        return used
