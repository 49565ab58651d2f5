"""The sections of what the board talks to: `[mqtt]`, `[web]` and `[fleet]`."""

from __future__ import annotations

import socket
from typing import Annotated, Literal

from pydantic import AfterValidator, StrictBool, StrictInt, StrictStr

from ..commands.payloads import COMMAND_NAMES
from ..schema import StrictModel
from .fields import PATH, PasswordSection, credential_setting, password_file_setting, setting
from .values import (
    LOOPBACK,
    Commands,
    ConfigPath,
    CredentialName,
    DiscoveryPrefix,
    FleetName,
    FleetPrefix,
    Host,
    Listen,
    TopicPrefix,
    default_client_id,
    instance_of,
    is_loopback,
    parse_listen,
)


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
    without one, the only pictures that leave the board are `[mqtt] pictures` (the last class
    change's and sample's) and `cmd/thumbnail` replies, both of which can be switched off."""

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
