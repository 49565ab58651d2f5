"""The checks a section's model cannot make alone: the file system, and one key against another.

Each check takes the validated section, returns it (completed where the check fills something
in: the bundle's class names, the password read from its file) and reports problems by key.
The bundle is read with the runtime's own reader (``model.bundle.read_manifest``), so a bundle
that passes here is found the same way by `personalizer run`.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import SecretStr

from ..errors import BundleError
from ..schema import MISSING
from .devices import CameraConfig, GpioConfig
from .models import ModelConfig, StateConfig
from .network import FleetConfig, MqttConfig, WebConfig
from .report import ConfigProblem
from .values import PYAV_INSTALL, fleet_name_problem, pin_key

Report = Callable[[str, object, str], None]


def check_model(model: ModelConfig, report: Report) -> ModelConfig:
    """The bundle exists, is an image bundle, and fits the class names (filled in if empty)."""
    from ..model.bundle import read_manifest

    if model.device is not None and model.delegate != "edgetpu":
        report("model.device", model.device, 'applies to delegate = "edgetpu" only; remove it')
    bundle = model.bundle
    if bundle is None:
        report("model.bundle", MISSING, "set it to a path (absolute, or relative to the config)")
        return model
    if not bundle.exists():
        report(
            "model.bundle",
            str(bundle),
            "no such file or folder; point it at a bundle folder or .zip",
        )
        return model
    try:
        manifest = read_manifest(bundle)
    except BundleError as exc:
        report("model.bundle", str(bundle), f"not a usable bundle: {exc}")
        return model
    if not manifest.is_image:
        report(
            "model.bundle",
            str(bundle),
            f"takes a {list(manifest.input_shape)} tensor, not camera images; the daemon runs "
            "image bundles only (run this one with the Python API, personalizer."
            "TransferLearningModel, or convert an image base)",
        )
    classes = model.classes
    if len(classes) > manifest.num_classes:
        report(
            "model.classes",
            list(classes),
            f"the bundle has room for {manifest.num_classes} classes (its --num_classes); list "
            f"at most {manifest.num_classes} names or convert a bundle with a larger "
            "--num_classes",
        )
    if not classes:
        classes = manifest.class_names
    return model.model_copy(update={"classes": tuple(classes)})


def check_camera(camera: CameraConfig, environ: Mapping[str, str], report: Report) -> CameraConfig:
    """A replay camera has a path, and the path exists; a network camera has a URL, its
    decoder (PyAV) and its password (file or systemd credential)."""
    if camera.source == "stream":
        camera = _check_stream(camera, environ, report)
    elif camera.url is not None:
        report("camera.url", camera.url, 'is used by source = "stream" only; set that or remove it')
    if camera.source == "replay" and camera.path is None:
        report("camera.path", MISSING, 'source = "replay" needs a folder of images or a video')
    if camera.path is not None and not camera.path.exists():
        report(
            "camera.path",
            str(camera.path),
            "no such file or folder; give a folder of JPEG/PNG or a video file",
        )
    return camera


def _check_stream(camera: CameraConfig, environ: Mapping[str, str], report: Report) -> CameraConfig:
    if camera.url is None:
        report(
            "camera.url", MISSING, 'source = "stream" needs the URL, e.g. "rtsp://host:554/path"'
        )
    if importlib.util.find_spec("av") is None:
        report(
            "camera.source",
            "stream",
            f"needs PyAV, which decodes the stream: {PYAV_INSTALL}",
        )
    password, source = _login("camera", camera, environ, report)
    return camera.with_password(password, source)


def _read_secret(path: Path) -> SecretStr | None:
    # scripts/install.sh creates the credential file empty when the broker needs no password:
    # an empty file means "no password", not an empty one.
    text = path.read_text(encoding="utf-8").rstrip("\r\n")
    return SecretStr(text) if text else None


def _login(
    section: str, config: CameraConfig | MqttConfig, environ: Mapping[str, str], report: Report
) -> tuple[SecretStr | None, str]:
    """The section's password and where it came from; a password needs a user name."""
    password, source = _password(
        section, config.password_file, config.password_credential, environ, report
    )
    if password is not None and not config.username:
        report(f"{section}.username", "", "a password is set, so set the user name it belongs to")
    return password, source


def _password(
    section: str,
    password_file: Path | None,
    credential_name: str,
    environ: Mapping[str, str],
    report: Report,
) -> tuple[SecretStr | None, str]:
    """The password of ``section`` from its file, else from the systemd credential, and where
    it came from (for the log); (None, "") when there is none."""
    if password_file is not None:
        try:
            password = _read_secret(password_file)
            return password, f"file {password_file}" if password else ""
        except OSError as exc:
            report(
                f"{section}.password_file",
                str(password_file),
                f"cannot be read ({exc.strerror or exc}); make it readable by the daemon's user "
                "or use a systemd credential instead",
            )
    elif environ.get("CREDENTIALS_DIRECTORY"):
        credential = Path(environ["CREDENTIALS_DIRECTORY"]) / credential_name
        if credential.is_file():
            try:
                password = _read_secret(credential)
                return password, f"systemd credential {credential_name}" if password else ""
            except OSError as exc:
                report(
                    f"{section}.password_credential",
                    credential_name,
                    f"cannot be read ({exc.strerror or exc})",
                )
    return None, ""


def check_mqtt(mqtt: MqttConfig, environ: Mapping[str, str], report: Report) -> MqttConfig:
    """Read the password (file or systemd credential); TLS files exist and pair up."""
    password, source = _login("mqtt", mqtt, environ, report)
    for name in ("ca", "cert", "key"):
        value = getattr(mqtt, name)
        if value is not None and not value.is_file():
            report(f"mqtt.{name}", str(value), "no such file; give the PEM file's path")
    if (mqtt.cert is None) != (mqtt.key is None):
        missing = "cert" if mqtt.cert is None else "key"
        report(f"mqtt.{missing}", MISSING, "client certificates need both cert and key")
    tls = mqtt.tls or mqtt.ca is not None or mqtt.cert is not None  # ca or cert turn TLS on
    return mqtt.model_copy(update={"tls": tls}).with_password(password, source)


def check_state(state: StateConfig, report: Report) -> StateConfig:
    """The state folder is a folder this user can write (when it exists already)."""
    directory = state.dir
    if directory.exists() and not directory.is_dir():
        report("state.dir", str(directory), "exists and is not a folder; choose a folder")
    elif directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
        report(
            "state.dir",
            str(directory),
            "is not writable by this user; fix its owner or choose another",
        )
    return state


def check_gpio(gpio: GpioConfig, classes: tuple[str, ...] | None, report: Report) -> GpioConfig:
    """Each pin once, one button/LED per class, every class known, something wired if enabled."""
    keys = [pin_key(p) for p in gpio.pins()]
    for pin in sorted({k for k in keys if keys.count(k) > 1}):
        report("gpio", pin, f"pin {pin} is assigned twice; give each button and LED its own pin")
    for key, entries, what in (
        ("class_buttons", gpio.class_buttons, "button"),
        ("class_leds", gpio.class_leds, "LED"),
    ):
        names = [a.class_name for a in entries]
        for name in sorted({n for n in names if names.count(n) > 1}):
            report(f"gpio.{key}", name, f"class {name!r} has more than one {what}")
        for entry in entries if classes else ():
            if entry.class_name not in classes:
                report(
                    f"gpio.{key}",
                    entry.class_name,
                    f"is not one of [model] classes: {', '.join(classes)}",
                )
    if gpio.enabled and not keys:
        report(
            "gpio.enabled",
            True,
            "no button or LED is configured: add [[gpio.class_buttons]] or set enabled = false",
        )
    return gpio


def check_web(web: WebConfig, environ: Mapping[str, str], report: Report) -> WebConfig:
    """Read the page's password (file or systemd credential); the TLS certificate and key
    exist, pair up and load."""
    password, source = _password("web", web.password_file, web.password_credential, environ, report)
    for name in ("tls_cert", "tls_key"):
        value = getattr(web, name)
        if value is not None and not value.is_file():
            report(f"web.{name}", str(value), "no such file; give the PEM file's path")
    if (web.tls_cert is None) != (web.tls_key is None):
        missing = "tls_cert" if web.tls_cert is None else "tls_key"
        report(f"web.{missing}", MISSING, "HTTPS needs both tls_cert and tls_key")
    elif web.tls_cert is not None and web.tls_cert.is_file() and web.tls_key.is_file():
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                web.tls_cert, web.tls_key
            )
        except (ssl.SSLError, OSError) as exc:
            report(
                "web.tls_cert",
                str(web.tls_cert),
                f"cannot be used with web.tls_key {web.tls_key} ({exc}); give a PEM "
                "certificate and the PEM private key that belongs to it",
            )
    return web.with_password(password, source)


def check_fleet(
    fleet: FleetConfig, mqtt: MqttConfig, state: StateConfig, report: Report
) -> FleetConfig:
    """The board's name (mqtt.client_id when empty) can be a topic level; a sharing board
    keeps its samples' pictures (they are what it shares)."""
    if not fleet.enabled:
        return fleet
    board = fleet.board
    if not board:
        board = mqtt.client_id
        reason = fleet_name_problem(board)
        if reason:
            report(
                "fleet.board",
                "",
                f"is empty, and mqtt.client_id {board!r}, which it defaults to, {reason}; set "
                'fleet.board = "kitchen" (or another name)',
            )
    if fleet.mode == "share" and not state.store_images:
        report(
            "fleet.mode",
            "share",
            "shares the samples' pictures, and state.store_images = false keeps none: set "
            'state.store_images = true, or mode = "follow"',
        )
    return fleet.model_copy(update={"board": board})


def reporter(problems: list[ConfigProblem]) -> Report:
    """A `Report` that appends to ``problems``."""

    def report(key: str, value: object, allowed: str) -> None:
        problems.append(ConfigProblem(key, value, allowed))

    return report
