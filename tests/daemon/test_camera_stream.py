"""Network cameras: RTSP and HTTP MJPEG streams from real servers on loopback.

The RTSP server is GStreamer's (tests/support/rtsp_serve.py, run by the system Python); the
MJPEG server is Python's http.server sending multipart/x-mixed-replace. Both serve real photos
whose frames carry their number as a row of squares (stream_servers.coded_frames), so a test
knows exactly which frame the source handed out. The first part drives StreamSource directly;
the second runs the real daemon (`personalizer run`) against the servers and a real broker.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from personalizer.camera import CameraError, create_frame_source
from personalizer.camera.stream import StreamSource
from personalizer.config import ConfigError, parse_config
from personalizer.redaction import redact_text, redact_url
from tests.support import photos
from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import write_config
from tests.support.mqtt_watch import b64
from tests.support.stream_servers import (
    MjpegServer,
    RtspServer,
    coded_frames,
    photo_jpegs,
    read_code,
    write_frames,
)
from tests.support.waiting import wait_until

FRAMES = 16  # distinct coded frames a server cycles through
USER = "viewer"
PASSWORD = "s3cr:et@pa/ss word"  # characters that must be escaped in a URL's login


@pytest.fixture(scope="module")
def coded() -> list[bytes]:
    """16 JPEG frames of 640x360, each showing one of the photos and its own number."""
    return coded_frames(FRAMES, ["cat", "coffee", "rocket", "astronaut"])


@pytest.fixture(scope="module")
def coded_folder(coded, tmp_path_factory) -> Path:
    """The coded frames as files, for the RTSP server."""
    return write_frames(tmp_path_factory.mktemp("coded"), coded)


@pytest.fixture
def servers(tmp_path):
    """Start servers for a test (``servers(RtspServer(...))``); each is stopped afterwards."""
    started = []

    def start(server):
        if isinstance(server, RtspServer) and server.log is None:
            server.log = tmp_path / f"rtsp-{len(started)}.log"
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def stream(url: str, password: str | None = None, **kwargs) -> StreamSource:
    """A StreamSource with the test login (when ``password`` is given) and short timeouts."""
    login = {"username": USER, "password": SecretStr(password)} if password is not None else {}
    kwargs.setdefault("fps", 100.0)
    kwargs.setdefault("read_timeout", 3.0)
    return StreamSource(url, password_source="file /test/camera_password", **login, **kwargs)


def assert_shows_coded_frames(source: StreamSource, reads: int = 6) -> list[int]:
    """Read ``reads`` frames; each must be 640x360 RGB showing a coded frame, in order."""
    codes = []
    for _ in range(reads):
        image = source.read()
        assert image.shape == (360, 640, 3) and image.dtype == np.uint8
        codes.append(read_code(image, FRAMES))
    steps = [(b - a) % FRAMES for a, b in zip(codes, codes[1:], strict=False)]
    assert all(0 < step < FRAMES // 2 for step in steps), codes  # forwards, never repeated
    return codes


def assert_rgb(image: np.ndarray, coded: list[bytes]) -> None:
    """``image`` is its coded frame in RGB order (not BGR): its colours match the original's."""
    import io

    from PIL import Image

    original = np.asarray(Image.open(io.BytesIO(coded[read_code(image, FRAMES)])).convert("RGB"))
    as_sent = np.abs(image.astype(int) - original).mean()
    swapped = np.abs(image[..., ::-1].astype(int) - original).mean()
    assert as_sent < 12 and swapped > 2 * as_sent, (as_sent, swapped)


# --- the source against real servers ------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_frames_arrive_in_rgb_over_the_transport_asked_for(
    transport, servers, coded, coded_folder
):
    # The server allows only `transport`: asking for the other one must fail, so a pass proves
    # rtsp_transport reaches FFmpeg.
    server = servers(RtspServer(coded_folder, transport=transport))
    source = stream(server.url, transport=transport)
    source.open()
    try:
        assert source.describe() == f"stream {server.url} 640x360 mjpeg"
        assert_shows_coded_frames(source)
        assert_rgb(source.read(), coded)
    finally:
        source.close()
    other = stream(server.url, transport="udp" if transport == "tcp" else "tcp")
    with pytest.raises(CameraError):
        other.open()
        other.read()
    other.close()


def test_rtsp_h264_behind_a_digest_login_shows_the_photos(servers, coded, coded_folder):
    server = servers(
        RtspServer(coded_folder, codec="h264", user=USER, password=PASSWORD, auth="digest")
    )
    source = stream(server.url, PASSWORD)
    source.open()
    try:
        assert source.describe().endswith("640x360 h264")
        assert_shows_coded_frames(source)
        assert_rgb(source.read(), coded)
    finally:
        source.close()


def test_http_mjpeg_behind_a_basic_login_shows_the_photos(servers, coded):
    server = servers(MjpegServer(coded, user=USER, password=PASSWORD))
    source = stream(server.url, PASSWORD)
    source.open()
    try:
        assert source.describe() == f"stream {server.url} 640x360 mjpeg"
        assert_shows_coded_frames(source)
        assert_rgb(source.read(), coded)
    finally:
        source.close()


@pytest.mark.parametrize("protocol", ["RTSP", "HTTP"])
def test_a_wrong_password_is_named_401_with_what_to_check(protocol, servers, coded, coded_folder):
    if protocol == "RTSP":
        server = servers(RtspServer(coded_folder, user=USER, password=PASSWORD))
    else:
        server = servers(MjpegServer(coded, user=USER, password=PASSWORD))
    wrong = "not-" + PASSWORD
    with pytest.raises(CameraError) as refused:
        stream(server.url, wrong).open()
    message = str(refused.value)
    assert message.startswith(f"{protocol} 401 Unauthorized: the camera refused the login")
    assert f'camera.username ("{USER}")' in message and "file /test/camera_password" in message
    assert wrong not in message and "not-" not in message
    with pytest.raises(CameraError, match=f"{protocol} 401 .* wants a login; set camera.username"):
        stream(server.url).open()


def test_the_newest_frame_wins_after_a_slow_consumer(servers, coded):
    server = servers(MjpegServer(coded, fps=20))
    source = stream(server.url)
    source.open()
    try:
        source.read()
        busy = threading.Event()
        busy.wait(0.6)  # the consumer is busy (a slow classification) while ~12 frames go out
        code = read_code(source.read(), FRAMES)
        returned = time.time()
    finally:
        source.close()
    sent = [item for item in server.sent.items() if item[1] <= returned]
    newest = sent[-1][0]
    shown = max(number for number, _, position in sent if position == code)
    # One frame may be on its way; a queue would hand out the frame after the previous read.
    assert newest - shown <= 2, (newest, shown)


def test_a_dropped_stream_fails_the_read_and_opens_again_when_the_camera_is_back(
    servers, coded_folder
):
    server = servers(RtspServer(coded_folder))
    source = stream(server.url)
    source.open()
    source.read()
    server.stop()
    started = time.monotonic()
    with pytest.raises(CameraError, match="the camera ended the stream|broke off|stalled"):
        while time.monotonic() - started < 10:
            source.read()
    source.close()
    with pytest.raises(CameraError, match=r"connection refused by 127\.0\.0\.1:\d+: is the camera"):
        source.open()
    server.start()  # the camera is back, on the same port
    source.open()
    try:
        assert_shows_coded_frames(source, reads=3)
    finally:
        source.close()


def test_a_stalled_stream_fails_the_read_within_the_read_timeout(servers, coded):
    server = servers(MjpegServer(coded))
    source = stream(server.url, read_timeout=1.5)
    source.open()
    source.read()
    server.stall()
    started = time.monotonic()
    with pytest.raises(CameraError, match="stalled"):
        while True:
            source.read()
    assert time.monotonic() - started < 10
    source.close()
    server.resume()


def test_close_from_another_thread_ends_a_pending_read(servers, coded):
    server = servers(MjpegServer(coded))
    source = stream(server.url, read_timeout=30.0)
    source.open()
    source.read()
    server.stall()
    threading.Timer(0.3, source.close).start()
    started = time.monotonic()
    with pytest.raises(CameraError):
        while True:
            source.read()
    assert time.monotonic() - started < 5


def test_a_wrong_path_is_named_404(servers, coded):
    server = servers(MjpegServer(coded))
    with pytest.raises(CameraError, match="HTTP 404 Not Found: the camera has no stream at /nope"):
        stream(server.url.replace("/video", "/nope")).open()


def test_stream_sources_are_made_from_the_config_and_never_show_the_password(tmp_path, bundle):
    secret = tmp_path / "camera_password"
    secret.write_text(PASSWORD + "\n")
    config = parse_stream_config(tmp_path, bundle, username=USER, password_file=str(secret))
    source = create_frame_source(config.camera)
    assert isinstance(source, StreamSource)
    assert source.transport == "udp" and source.username == USER
    assert source._password.get_secret_value() == PASSWORD
    assert PASSWORD not in source.describe() and USER not in source.describe()
    assert "rtsp://192.168.1.20:554/stream2" in config.summary()


# --- redaction and the config ---------------------------------------------------------------------


def test_redaction_masks_passwords_and_secret_query_values():
    assert redact_url("rtsp://admin:hunter2@cam:554/s") == "rtsp://admin:***@cam:554/s"
    assert redact_url("rtsp://admin@cam/s") == "rtsp://admin@cam/s"
    assert redact_url("http://cam/v.cgi?user=a&pwd=hunter2") == "http://cam/v.cgi?user=a&pwd=***"
    assert redact_url("http://cam/v?token=abc&x=1") == "http://cam/v?token=***&x=1"
    text = "failed: 'rtsp://u:p%40ss@cam/x' (p@ss)"
    assert redact_text(text, ("p@ss",)) == "failed: 'rtsp://u:***@cam/x' (***)"


def test_an_error_text_keeps_the_plain_url_and_masks_the_login():
    # Without a login the URL is no secret: the reason still says which stream failed.
    plain = stream("rtsp://cam:554/stream2")
    text = "Connection refused: 'rtsp://cam:554/stream2'"
    assert redact_text(text, plain._context.secrets) == text
    with_login = stream("rtsp://cam:554/stream2", password="p@ss word")
    login_url = with_login._login_url()
    said = redact_text(f"failed: {login_url!r} (p@ss word)", with_login._context.secrets)
    assert "p@ss" not in said and "p%40ss" not in said and "rtsp://" in said


def parse_stream_config(tmp_path: Path, bundle: Path, environ: dict | None = None, **camera):
    """The config of a network camera at a made-up address, with ``camera`` keys on top."""
    document = {
        "model": {"bundle": str(bundle)},
        "camera": {
            "source": "stream",
            "url": "rtsp://192.168.1.20:554/stream2",
            "rtsp_transport": "udp",
            **camera,
        },
        "state": {"dir": str(tmp_path / "state")},
    }
    return parse_config(document, tmp_path / "personalizer.toml", environ or {})


def config_problems(tmp_path: Path, bundle: Path, environ: dict | None = None, **camera) -> str:
    """The problem lines of a config with these ``camera`` keys (there must be some)."""
    with pytest.raises(ConfigError) as error:
        parse_stream_config(tmp_path, bundle, environ, **camera)
    return str(error.value)


def test_the_camera_password_comes_from_its_file_or_the_systemd_credential(tmp_path, bundle):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "camera_password").write_text(PASSWORD)
    environ = {"CREDENTIALS_DIRECTORY": str(credentials)}
    config = parse_stream_config(tmp_path, bundle, environ, username=USER)
    assert config.camera.password.get_secret_value() == PASSWORD
    assert config.camera.password_source == "systemd credential camera_password"
    secret = tmp_path / "from_file"
    secret.write_text("other\n")
    config = parse_stream_config(
        tmp_path, bundle, environ, username=USER, password_file="from_file"
    )
    assert config.camera.password.get_secret_value() == "other"
    assert config.camera.password_source == f"file {secret}"


@pytest.mark.parametrize(
    ("camera", "expected"),
    [
        ({"url": f"rtsp://{USER}:hunter2@cam/s"},
         'camera.url = "rtsp://viewer:***@cam/s": carries a password; put the user name in '
         "camera.username and the password in the file named by camera.password_file (or the "
         "systemd credential camera_password)"),
        ({"url": "http://cam/v.cgi?user=a&pwd=hunter2"},
         "carries a password (query parameter pwd)"),
        ({"url": "rtsp://admin@cam/s"},
         "carries a user name; put the user name in camera.username"),
        ({"url": "ftp://cam/s"}, "the scheme ftp:// is not supported; use rtsp://"),
        ({"url": "rtsp:///s"}, "names no host"),
        ({"url": ""}, 'camera.url: missing; source = "stream" needs the URL'),
        ({"password_file": "/nonexistent/camera_password", "username": USER},
         'camera.password_file = "/nonexistent/camera_password": cannot be read'),
        ({"rtsp_transport": "http"}, 'camera.rtsp_transport = "http": must be one of "tcp", "udp"'),
    ],
)  # fmt: skip
def test_stream_config_errors_name_the_key_and_never_show_the_password(
    tmp_path, bundle, camera, expected
):
    problems = config_problems(tmp_path, bundle, **camera)
    assert expected in problems
    assert "hunter2" not in problems


def test_a_password_without_a_user_name_is_a_config_error(tmp_path, bundle):
    secret = tmp_path / "camera_password"
    secret.write_text("hunter2")
    problems = config_problems(tmp_path, bundle, password_file=str(secret))
    assert "camera.username" in problems and "set the user name it belongs to" in problems


@pytest.mark.parametrize(
    "camera",
    [{"url": "rtsp://admin:hunter2@cam:554/s"}, {"password_file": "missing", "username": "u"}],
)
def test_the_daemon_exits_78_on_a_stream_config_error_without_showing_the_password(
    tmp_path, broker, bundle, photo_frames, camera
):
    sections = base_sections(tmp_path, broker, bundle, photo_frames, "pz/bad-stream")
    sections["camera"] = {"source": "stream", "url": "rtsp://127.0.0.1:9/s", **camera}
    config = write_config(tmp_path / "bad-stream.toml", sections)
    done = subprocess.run(
        [sys.executable, "-m", "personalizer", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 78, done.stderr
    assert "camera." in done.stderr and "hunter2" not in done.stderr + done.stdout


# --- the daemon ---------------------------------------------------------------------------------


def stream_camera(server, password_file: Path | None = None, **more) -> dict:
    """The [camera] overrides for a daemon reading ``server``."""
    camera = {"source": "stream", "url": server.url, "fps": 30.0, **more}
    if password_file is not None:
        camera |= {"username": USER, "password_file": str(password_file)}
    return {"camera": camera}


def teach(daemon) -> None:
    """Four classes, each from its photo as the camera shows it and from another shot of it,
    sent as images (cmd/sample)."""
    for name, shown in zip(CLASSES, photo_jpegs(list(CLASSES)), strict=True):
        for image in (shown, photos.encode(photos.variant(name, 1))):
            result = daemon.watch.command("sample", {"class": name, "image": b64(image)})
            assert result["ok"], result


def assert_no_secret(daemon, secret: str) -> None:
    """Neither the log nor anything published holds ``secret`` (raw or percent-encoded)."""
    from urllib.parse import quote

    published = b"\n".join(m.payload for m in daemon.watch.messages).decode(errors="replace")
    for form in (secret, quote(secret, safe="")):
        assert form not in daemon.process.log(), form
        assert form not in published, form


def test_the_daemon_learns_and_classifies_a_streamed_camera(run_daemon, servers, tmp_path):
    # Each photo stays on air for 8 frames (0.8 s), as an object in front of the camera would.
    pictures = coded_frames(32, [name for name in CLASSES for _ in range(8)])
    server = servers(
        RtspServer(write_frames(tmp_path / "held", pictures), codec="h264", user=USER,
                   password=PASSWORD)
    )  # fmt: skip
    secret = tmp_path / "camera_password"
    secret.write_text(PASSWORD + "\n")
    daemon = run_daemon(overrides=stream_camera(server, secret))
    status = daemon.status(predicate=lambda s: s["camera"]["ok"], timeout=30)
    assert status["camera"]["source"] == f"stream {server.url} 640x360 h264"
    teach(daemon)
    mark = daemon.watch.mark()
    wait_until(
        lambda: len(daemon.watch.received("prediction", since=mark)) >= 60, 60, "60 predictions"
    )
    right = seen = 0
    classes = set()
    for message in daemon.watch.received("prediction", since=mark):
        prediction = message.json()
        on_air = server.sent.on_air(prediction["ts"])
        earlier = server.sent.on_air(prediction["ts"] - 0.3)
        if on_air is None or earlier is None or on_air[2] // 8 != earlier[2] // 8:
            continue  # the picture changed just now: either class may be right
        seen += 1
        right += prediction["class"] == CLASSES[on_air[2] // 8]
        classes.add(prediction["class"])
    assert seen >= 30 and right / seen >= 0.9, (right, seen)
    assert classes == set(CLASSES)
    assert_no_secret(daemon, PASSWORD)


def test_a_camera_that_goes_away_is_reported_and_recovers(run_daemon, servers, coded):
    server = servers(MjpegServer(coded))
    daemon = run_daemon(overrides=stream_camera(server))
    daemon.status(predicate=lambda s: s["camera"]["ok"], timeout=30)
    daemon.watch.wait_for("prediction", timeout=30)
    mark = daemon.watch.mark()
    server.stop()
    down = daemon.status(since=mark, predicate=lambda s: not s["camera"]["ok"], timeout=30)
    assert down["camera"]["source"] == f"stream {server.url} 640x360 mjpeg"
    assert "broke off" in down["camera"]["error"] or "stalled" in down["camera"]["error"]
    server.start()
    back = daemon.watch.mark()
    daemon.status(since=back, predicate=lambda s: s["camera"]["ok"], timeout=60)
    daemon.watch.wait_for("prediction", since=daemon.watch.mark(), timeout=30)
    log = daemon.process.log()
    assert "retrying in" in log and "is back after" in log


def test_a_wrong_password_is_reported_and_retried_without_exiting(
    run_daemon, servers, coded, tmp_path
):
    server = servers(MjpegServer(coded, user=USER, password=PASSWORD))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    wrong = "Wr0ng:p@ss/word"
    (credentials / "camera_password").write_text(wrong)
    daemon = run_daemon(
        overrides={"camera": {"source": "stream", "url": server.url, "username": USER}},
        env={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    status = daemon.status(predicate=lambda s: "401" in (s["camera"]["error"] or ""), timeout=30)
    assert status["camera"]["error"] == (
        f'HTTP 401 Unauthorized: the camera refused the login; check camera.username ("{USER}") '
        "and the password in systemd credential camera_password"
    )
    wait_until(lambda: server.refused >= 2, 30, "a second login attempt")
    assert daemon.process.alive()
    assert_no_secret(daemon, wrong)
