"""The configuration's sections as typed models: every key, its default and its range, once.

A section is a frozen pydantic model that forbids unknown keys. Values are checked for type and
range here (the value types are in :mod:`.values`); what needs the file system or another section
(the bundle's manifest, password files, pins against classes) is checked in :mod:`.checks`.
Relative paths are taken relative to the config file's folder, which validation receives as
``context={"base": folder}``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, PrivateAttr, SecretStr, StrictBool, StrictInt, StrictStr

from ..commands.payloads import COMMAND_NAMES
from ..model.interpreters import default_num_threads
from ..model.region import Region
from ..schema import StrictModel
from ..trainer import plateau
from .values import (
    LOOPBACK,
    PIN_HINT,
    CameraDevice,
    ClassName,
    Commands,
    ConfigPath,
    CredentialName,
    DiscoveryPrefix,
    EdgeTpuDevice,
    FleetName,
    FleetPrefix,
    Host,
    Listen,
    Names,
    Pin,
    StreamUrl,
    TopicPrefix,
    default_client_id,
    instance_of,
    is_loopback,
    parse_listen,
)


def setting(description: str, **rules: Any) -> Any:
    """A config key's field: ``description`` is its comment in the config file and its line in
    the docs (both generated from it, see config/reference.py). ``rules`` are pydantic's
    (``ge=``, ``alias=``, ...) plus these extras, read by schema.py and config/reference.py:

    - ``allowed``/``hint``: the wording of what the key accepts, in error messages;
    - ``toml``: the value as the default config file shows it, when it is not the default's
      plain TOML form (``num_threads = 0`` for None);
    - ``commented``: shown commented out (optional keys whose absence means something);
    - ``tables``: example ``[[section.key]]`` tables, shown commented out.
    """
    extra = {
        k: rules.pop(k) for k in ("allowed", "hint", "toml", "commented", "tables") if k in rules
    }
    return Field(description=description, json_schema_extra=extra or None, **rules)


PATH = "set it to a path (absolute, or relative to the config)"


def password_file_setting(whose: str) -> Any:
    """The setting of a section's ``password_file``."""
    return setting(
        f"A file holding {whose} password (its trailing newline is stripped). Leave empty to "
        "use the systemd credential below. The password is never logged.",
        allowed=PATH,
        toml='""',
    )


def credential_setting(name: str, empty: str) -> Any:
    """The setting of a section's ``password_credential`` (default ``name``); ``empty`` says
    what an empty credential means there."""
    return setting(
        f"Name of the systemd credential holding the password (LoadCredential={name}:/path in "
        "the unit); read from $CREDENTIALS_DIRECTORY/<name> when password_file is empty. " + empty
    )


# --- sections -------------------------------------------------------------------------------


class ModelConfig(StrictModel):
    """`[model]`: which bundle to run and how."""

    bundle: Annotated[
        ConfigPath,
        setting(
            "The bundle written by `tflite-transfer-convert` on a workstation: its folder or a "
            ".zip of it.",
            allowed=PATH,
            toml='"/var/lib/personalizer/bundle"',
        ),
    ]
    classes: Annotated[
        Names,
        setting(
            "Names of the classes a new board starts with: at most as many as the bundle has "
            "class slots (its --num_classes, e.g. 8 or 16). Classes are added, renamed and "
            "removed on the board (the web page, cmd/class); those changes are kept in the "
            "state and this list is not read again once the board has a state. Empty: the "
            "bundle's own class names."
        ),
    ] = ()
    runtime: Annotated[
        Literal["auto", "tflite_runtime", "ai_edge_litert", "tensorflow"],
        setting(
            'The TFLite interpreter package: "auto" (tflite_runtime, then ai_edge_litert, then '
            'tensorflow), "tflite_runtime", "ai_edge_litert" or "tensorflow".'
        ),
    ] = "auto"
    num_threads: Annotated[
        StrictInt | None,
        setting(
            "Threads of the base model's interpreter. 0: one less than the number of cores (at "
            "least 1, at most 4), which leaves a core to the camera, MQTT and the trainer: a "
            "base model that has to share its cores with them slows down far more than the one "
            "thread it gives up.",
            ge=0,
            le=64,
            hint=" (0: one less than the number of cores, 1 to 4)",
            toml="0",
        ),
        AfterValidator(lambda n: n or None),
    ] = None
    delegate: Annotated[
        Literal["none", "edgetpu"] | None,
        setting(
            '"none" runs everything on the CPU; "edgetpu" runs the base model on a Coral Edge '
            "TPU (falls back to the CPU, with a warning, when no Edge TPU is found). The "
            "bundle's bottleneck_edgetpu.tflite (tflite-transfer-convert --edgetpu) is used "
            "when present.",
            toml='"none"',
        ),
        AfterValidator(lambda d: None if d == "none" else d),
    ] = None
    device: Annotated[
        EdgeTpuDevice,
        setting(
            'With delegate = "edgetpu": which one, as libedgetpu names them: "usb", "pci", ":0" '
            '(the first found), "usb:1". Leave it out to take the first Edge TPU found.',
            toml='"usb"',
            commented=True,
        ),
    ] = None

    @property
    def base_threads(self) -> int:
        """Threads for the base model: `num_threads`, or the runtime's default (one less than
        the cores, 1 to 4: see ``model.interpreters.default_num_threads``)."""
        return self.num_threads or default_num_threads()


def _region(values: tuple[float, ...]) -> tuple[float, ...]:
    """A region, checked: empty, or [x, y, width, height] inside the frame."""
    return tuple(Region.parse(values).as_list()) if values else ()


class PasswordSection(StrictModel):
    """A section whose password is read by .checks from its ``password_file`` or a systemd
    credential, never from the config file itself."""

    _password: SecretStr | None = PrivateAttr(None)
    _password_source: str = PrivateAttr("")

    @property
    def password(self) -> SecretStr | None:
        """The password (from ``password_file`` or the systemd credential), if any."""
        return self._password

    @property
    def password_source(self) -> str:
        """Where the password came from, for the log (never the password itself)."""
        return self._password_source

    def with_password(self, password: SecretStr | None, source: str) -> Self:
        """A copy that carries ``password``, read from ``source``."""
        copy = self.model_copy()
        copy._password, copy._password_source = password, source
        return copy


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


class InferenceConfig(StrictModel):
    """`[inference]`: how often to classify and when a new class is announced."""

    rate: Annotated[
        float,
        setting(
            "Classifications per second, on the newest frame; 0 classifies every new frame.",
            ge=0.0,
            le=1000.0,
            hint=" (classifications per second; 0 = every frame)",
        ),
    ] = 5.0
    min_confidence: Annotated[
        float,
        setting(
            "A class is announced only after it was the top class with at least this "
            "probability...",
            ge=0.0,
            le=1.0,
        ),
    ] = 0.6
    agree_frames: Annotated[
        StrictInt,
        setting(
            "...in this many consecutive classified frames (1 announces every confident frame).",
            ge=1,
            le=1000,
        ),
    ] = 3
    publish_interval: Annotated[
        float,
        setting(
            "An unchanged class is republished at most every this many seconds; a new class is "
            "published at once. 0 publishes every classified frame.",
            ge=0.0,
            le=86400.0,
            hint=" seconds",
        ),
    ] = 1.0
    unknown_label: Annotated[
        ClassName,
        setting(
            "The class reported for a frame that is none of the taught classes (it is far from "
            "all of their samples; the threshold is measured on the samples). Published like a "
            'class, with "known": false.'
        ),
    ] = "unknown"


class TrainingConfig(StrictModel):
    """`[training]`: the background trainer."""

    epochs_per_cycle: Annotated[
        StrictInt,
        setting(
            "Epochs per training cycle: `cmd/train start` (or the train button) trains this "
            "many epochs, then stops by itself. 0 (the default) stops when the loss stops "
            f"improving: after {plateau.PATIENCE} epochs that did not beat the best loss by "
            f"{plateau.MIN_IMPROVEMENT:.0%}, or at a loss under {plateau.CONVERGED}, at most "
            f"{plateau.MAX_EPOCHS} epochs.",
            ge=0,
            le=1_000_000,
            hint=" (0 = until the loss stops improving)",
        ),
    ] = 0
    until_stopped: Annotated[
        StrictBool,
        setting(
            "true: with epochs_per_cycle = 0, train until `cmd/train stop` (or the train button) "
            "instead of stopping when the loss stops improving."
        ),
    ] = False
    min_epoch_interval: Annotated[
        float,
        setting(
            "Minimum seconds from the start of one epoch to the start of the next. Leaves CPU "
            "time for inference and keeps <root>/loss to a readable rate; 0 trains flat out.",
            ge=0.0,
            le=3600.0,
            hint=" seconds",
        ),
    ] = 0.2
    autosave_interval: Annotated[
        float,
        setting(
            "While training, the state is saved at most this often (seconds); it is always "
            "saved when training stops and on shutdown, and every sample is stored at once.",
            ge=1.0,
            le=86400.0,
            hint=" seconds",
        ),
    ] = 30.0
    auto_start: Annotated[
        StrictBool,
        setting("Start training when the daemon starts, if the saved state has samples."),
    ] = False
    imprint: Annotated[
        StrictBool,
        setting(
            "Until the head is trained for the first time, set it from the mean of each "
            'class\'s samples after every new sample ("weight imprinting"), so predictions are '
            "useful at once. Only for bundles whose head is one softmax layer; others ignore it."
        ),
    ] = True


class MqttConfig(PasswordSection):
    """`[mqtt]`: the broker connection and the topics."""

    host: Annotated[Host, setting("The broker's host name or address.")] = "localhost"
    port: Annotated[StrictInt, setting("The broker's port.", ge=1, le=65535)] = 1883
    topic_prefix: Annotated[
        TopicPrefix,
        setting(
            'Root of every topic. Empty means "personalizer/<hostname>", or '
            '"personalizer/<hostname>/<name>" for the instance <name> of the template unit '
            "personalizer@<name>.service."
        ),
    ] = ""
    client_id: Annotated[
        StrictStr,
        setting(
            'MQTT client id; empty means "personalizer-<hostname>" (with "-<name>" for an '
            "instance). Must be unique on the broker."
        ),
        AfterValidator(lambda v, info: v or default_client_id(instance_of(info))),
    ] = ""
    username: Annotated[StrictStr, setting("User name, if the broker wants one.")] = ""
    password_file: Annotated[ConfigPath, password_file_setting("the broker's")] = None
    password_credential: Annotated[
        CredentialName,
        credential_setting(
            "mqtt_password",
            "An empty file (as scripts/install.sh creates when the broker needs no password) "
            'means "no password".',
        ),
    ] = "mqtt_password"
    tls: Annotated[
        StrictBool,
        setting(
            "Use TLS. Setting `ca` or `cert` turns it on too; with `ca` empty the system CAs "
            "are used."
        ),
    ] = False
    ca: Annotated[
        ConfigPath,
        setting(
            "PEM file of the CA that signed the broker's certificate (empty: the system CAs).",
            allowed=PATH,
            toml='""',
        ),
    ] = None
    cert: Annotated[
        ConfigPath,
        setting("PEM file of a client certificate (with `key`).", allowed=PATH, toml='""'),
    ] = None
    key: Annotated[
        ConfigPath,
        setting("PEM file of the client certificate's private key.", allowed=PATH, toml='""'),
    ] = None
    qos: Annotated[
        StrictInt,
        setting(
            "QoS of status, sample events and command results (0, 1 or 2). Predictions and loss "
            "are a stream and always use QoS 0.",
            ge=0,
            le=2,
        ),
    ] = 1
    keepalive: Annotated[
        StrictInt,
        setting("Seconds between keep-alive pings.", ge=5, le=3600, hint=" seconds"),
    ] = 60
    homeassistant_discovery: Annotated[
        StrictBool,
        setting(
            "Publish Home Assistant MQTT discovery configs (retained) so the board shows up as "
            "a device."
        ),
    ] = False
    discovery_prefix: Annotated[
        DiscoveryPrefix,
        setting("Home Assistant's discovery prefix (its MQTT integration setting)."),
    ] = "homeassistant"
    discovery: Annotated[
        Literal["entity", "device"],
        setting(
            'How discovery is published: "entity" (one retained config per entity; every Home '
            'Assistant release) or "device" (one config for the whole device, '
            "<discovery_prefix>/device/<node>/config; Home Assistant 2024.11 and later, which "
            "older releases ignore). Switching clears what the other form announced before the "
            "new one is announced; Home Assistant creates the same entities again (same unique "
            "ids; 2026.11 kept a name given to one, older releases may not)."
        ),
    ] = "entity"
    pictures: Annotated[
        StrictBool,
        setting(
            "Publish, retained, a JPEG of the model's view (at most 224x224 pixels and 32 KB) "
            "when the announced class changes (<root>/picture/class_change) and of each new "
            "sample (<root>/picture/sample); discovery shows them as image entities. false: "
            "no picture is published (and any left on the broker is cleared); the `thumbnail` "
            "command is switched off separately, with `commands`."
        ),
    ] = True
    max_payload_bytes: Annotated[
        StrictInt,
        setting(
            "Commands larger than this many bytes are refused (an image in a command is base64, "
            "~4/3 of the file size).",
            ge=1024,
            le=256 * 1024 * 1024,
        ),
    ] = 2 * 1024 * 1024
    max_image_pixels: Annotated[
        StrictInt,
        setting(
            "Images in commands with more pixels than this are refused before they are decoded.",
            ge=1024,
            le=100_000_000,
        ),
    ] = 4096 * 4096
    commands: Annotated[
        Commands,
        setting(
            "Which commands (<root>/cmd/<name>) this daemon accepts: true (all), false (a "
            "read-only daemon: it does not subscribe to commands at all, so nobody on the broker "
            'can change it), or a list such as ["sample", "train"] (the others get ok: false '
            "naming this key). Buttons and the web page are not affected. The commands: "
            + ", ".join(COMMAND_NAMES)
            + ".",
            toml="true",
        ),
    ] = COMMAND_NAMES


class StateConfig(StrictModel):
    """`[state]`: where samples and parameters are kept between runs."""

    dir: Annotated[
        ConfigPath,
        setting(
            "Where samples, parameters and optimizer state are kept (created 0700; systemd's "
            "StateDirectory=personalizer gives /var/lib/personalizer).",
            allowed=PATH,
        ),
        AfterValidator(lambda p: p or Path("/var/lib/personalizer")),
    ] = Path("/var/lib/personalizer")
    store_images: Annotated[
        StrictBool,
        setting(
            "Keep a JPEG (10-20 KB) of the model's view of each sample: the gallery's "
            "thumbnails, and the samples can be embedded again when you install another bundle. "
            "false keeps no images (then a new bundle means new samples)."
        ),
    ] = True


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


class WebConfig(PasswordSection):
    """`[web]`: the board's own web page (camera, scores, samples, training)."""

    enabled: Annotated[
        StrictBool,
        setting(
            "The board's own web page: the camera, the scores, a button per class, training, "
            'samples and classes, from a phone or a laptop (see docs/daemon.md, "The web page").'
        ),
    ] = False
    listen: Annotated[
        Listen,
        setting(
            'Address and port to listen on. "0.0.0.0:8080" is every network; "127.0.0.1:8080" '
            'this board only; "[::]:8080" IPv6 too. Without a password the page listens on '
            "127.0.0.1 only, whatever this says."
        ),
    ] = "0.0.0.0:8080"
    password_file: Annotated[ConfigPath, password_file_setting("the page's")] = None
    password_credential: Annotated[
        CredentialName,
        credential_setting(
            "web_password",
            'An empty file (as scripts/install.sh creates) means "no password": then the page '
            "is reachable from this board only (127.0.0.1), e.g. through "
            "`ssh -L 8080:127.0.0.1:8080 pi@board`.",
        ),
    ] = "web_password"
    tls_cert: Annotated[
        ConfigPath,
        setting(
            "HTTPS: a PEM certificate (with tls_key; both, or neither). Session cookies are then "
            "marked Secure.",
            allowed=PATH,
            toml='""',
        ),
    ] = None
    tls_key: Annotated[
        ConfigPath, setting("HTTPS: the certificate's private key.", allowed=PATH, toml='""')
    ] = None

    @property
    def tls(self) -> bool:
        """True when the page is served over HTTPS (`tls_cert` and `tls_key`)."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def bind(self) -> tuple[str, int]:
        """Where the server listens: `listen`, or loopback only while no password is set."""
        host, port = parse_listen(self.listen)
        if self.password is None and not is_loopback(host):
            return LOOPBACK, port
        return host, port

    @property
    def url(self) -> str | None:
        """The page's address for people and Home Assistant (`configuration_url`), or None
        when the page is off. A wildcard `listen` (0.0.0.0, ::) gives the board's host name."""
        if not self.enabled:
            return None
        host, port = self.bind
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{port}/"


class FleetConfig(StrictModel):
    """`[fleet]`: boards that share their samples through the broker (README, "A fleet of
    boards"). With a group, the samples' pictures travel to the broker and over its bridges;
    without one, no picture ever leaves the board."""

    group: Annotated[
        FleetName,
        setting(
            "The fleet this board belongs to: boards with the same group on one broker (or on "
            "bridged brokers) share their samples. Empty: no fleet (the default)."
        ),
    ] = ""
    mode: Annotated[
        Literal["share", "follow"],
        setting(
            '"share": every sample taken here (button, page, MQTT) is published to the group, '
            "and the group's samples are taken here. \"follow\": the group's samples are taken "
            "here, and nothing is ever published."
        ),
    ] = "share"
    board: Annotated[
        FleetName,
        setting(
            "This board's name in the group (a topic level; the samples it publishes are under "
            "it). Empty: mqtt.client_id, which is unique on the broker. Each board of a group "
            "needs its own name."
        ),
    ] = ""
    topic_prefix: Annotated[
        FleetPrefix,
        setting("Root of the fleet's topics: <topic_prefix>/<group>/<board>/..."),
    ] = "personalizer-fleet"
    max_samples: Annotated[
        StrictInt,
        setting(
            "At most this many samples from other boards of the group are kept here; more are "
            "left out (the status says how many) until some are deleted.",
            ge=1,
            le=100_000,
        ),
    ] = 2000
    max_payload_bytes: Annotated[
        StrictInt,
        setting(
            "Group messages larger than this are refused unread (a sample is its JPEG, 10-30 "
            "KB, and a line of text). The images in them are also held to mqtt.max_image_pixels.",
            ge=16 * 1024,
            le=16 * 1024 * 1024,
        ),
    ] = 256 * 1024
    max_tombstones: Annotated[
        StrictInt,
        setting(
            "Deletions this board remembers and keeps on the broker (so a board that was away "
            "learns them); older ones are cleared.",
            ge=10,
            le=100_000,
        ),
    ] = 1000
    train: Annotated[
        StrictBool,
        setting(
            "Start a training cycle by itself when samples from the group arrived (it ends when "
            "the loss stops improving)."
        ),
    ] = True
    train_delay: Annotated[
        float,
        setting(
            "Seconds without new samples from the group before that training cycle starts, so "
            "a burst is trained on once.",
            ge=0.0,
            le=3600.0,
            hint=" seconds",
        ),
    ] = 5.0

    @property
    def enabled(self) -> bool:
        """True when the board is in a group."""
        return bool(self.group)


SECTIONS: dict[str, type[StrictModel]] = {
    "model": ModelConfig,
    "camera": CameraConfig,
    "inference": InferenceConfig,
    "training": TrainingConfig,
    "mqtt": MqttConfig,
    "state": StateConfig,
    "gpio": GpioConfig,
    "web": WebConfig,
    "fleet": FleetConfig,
}
