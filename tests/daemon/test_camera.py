"""Cameras: replay plays real photos at fps, the newest frame wins, auto picks what opens."""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest

from personalizer.camera import AutoSource, CameraError, LatestFrame, create_frame_source
from personalizer.camera.opencv import OpenCVSource
from personalizer.camera.picamera2 import Picamera2Source
from personalizer.camera.replay import ReplaySource
from personalizer.config import CameraConfig
from tests.support import photos


@pytest.fixture
def photo_folder(tmp_path):
    return photos.replay_folder(tmp_path / "frames", ["cat", "coffee", "rocket"])


def test_replay_cycles_the_folder_in_name_order_at_fps(photo_folder):
    source = ReplaySource(photo_folder, width=160, height=120, fps=20)
    source.open()
    started = time.monotonic()
    frames = [source.read() for _ in range(7)]
    elapsed = time.monotonic() - started
    source.close()
    assert 0.25 <= elapsed < 1.0  # 7 frames at 20 fps: the first at once, then every 50 ms
    expected = [photos.photo(name) for name in ("cat", "coffee", "rocket")]
    for index, frame in enumerate(frames):
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        assert frame.shape[0] <= 120 and frame.shape[1] <= 160  # scaled down to fit
        original = expected[index % 3]
        ratio = original.shape[1] / original.shape[0]
        assert abs(frame.shape[1] / frame.shape[0] - ratio) < 0.05  # aspect kept
    assert np.array_equal(frames[0], frames[3]) and not np.array_equal(frames[0], frames[1])
    assert source.describe() == f"replay {photo_folder} (3 images)"


def test_replay_of_an_empty_or_missing_folder_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="holds no .jpg/.jpeg/.png files; add some images"):
        ReplaySource(tmp_path / "empty", 64, 64, 5).open()
    with pytest.raises(CameraError, match="does not exist"):
        ReplaySource(tmp_path / "gone", 64, 64, 5).open()


def test_replay_read_gives_up_when_closed_from_another_thread(photo_folder):
    source = ReplaySource(photo_folder, 64, 64, fps=0.2)  # a frame every 5 s
    source.open()
    source.read()
    threading.Timer(0.2, source.close).start()
    started = time.monotonic()
    with pytest.raises(CameraError):
        source.read()
    assert time.monotonic() - started < 2


def test_replaying_a_video_without_opencv_names_the_package(tmp_path, monkeypatch):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 100)
    monkeypatch.setitem(sys.modules, "cv2", None)  # as on a board without OpenCV
    with pytest.raises(CameraError, match="pip install opencv-python-headless"):
        ReplaySource(video, 64, 64, 5).open()


def test_the_newest_frame_wins_and_waiters_get_only_newer_frames():
    latest = LatestFrame()
    assert latest.latest() is None
    assert latest.wait_newer(0, timeout=0.05) is None
    for value in range(5):
        latest.put(np.full((2, 2, 3), value, dtype=np.uint8))
    newest = latest.wait_newer(0, timeout=0.05)
    assert newest.number == 5 and newest.image[0, 0, 0] == 4  # frames 1-4 were dropped
    assert not newest.image.flags.writeable
    assert latest.wait_newer(5, timeout=0.05) is None
    threading.Timer(0.1, latest.put, [np.zeros((2, 2, 3), dtype=np.uint8)]).start()
    later = latest.wait_newer(5, timeout=2)
    assert later is not None and later.number == 6


def test_auto_falls_back_to_replay_and_says_why_the_others_failed(photo_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, as off a Raspberry Pi
    monkeypatch.setitem(sys.modules, "cv2", None)
    config = CameraConfig(source="auto", path=photo_folder, width=64, height=64, fps=5)
    source = create_frame_source(config)
    assert isinstance(source, AutoSource)
    source.open()
    assert source.describe() == f"auto: replay {photo_folder} (3 images)"
    assert source.read().shape[2] == 3
    source.close()
    nothing = create_frame_source(CameraConfig(source="auto", width=64, height=64, fps=5))
    with pytest.raises(CameraError) as caught:
        nothing.open()
    assert "picamera2 camera 0 64x64: picamera2 is not available" in str(caught.value)
    assert "opencv /dev/video0: the opencv camera source needs OpenCV" in str(caught.value)


def test_picamera2_source_asks_for_an_rgb_stream_of_the_configured_size(monkeypatch):
    calls = {}

    class FakePicamera2:  # stands in for the library off a Raspberry Pi
        def __init__(self, number):
            calls["camera"] = number

        def create_video_configuration(self, main, controls, buffer_count):
            calls["main"], calls["controls"] = main, controls
            return "config"

        def configure(self, configuration):
            calls["configured"] = configuration

        def start(self):
            calls["started"] = True

        def capture_array(self, stream):
            return np.zeros((48, 64, 4), dtype=np.uint8)

        def stop(self):
            calls["stopped"] = True

        def close(self):
            calls["closed"] = True

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    source = Picamera2Source(fps=15, size=(64, 48))
    source.open()
    assert calls["main"] == {"size": (64, 48), "format": "BGR888"}  # R, G, B byte order
    assert calls["controls"] == {"FrameRate": 15.0}
    assert source.read().shape == (48, 64, 3)
    source.close()
    assert calls["stopped"] and calls["closed"]


def test_picamera2_without_a_camera_is_a_camera_error(monkeypatch):
    class NoCamera:
        def __init__(self, number):
            raise IndexError("list index out of range")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=NoCamera))
    with pytest.raises(CameraError, match="check the ribbon cable"):
        Picamera2Source(15, size=(64, 48)).open()


def test_opencv_source_without_opencv_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(CameraError, match="pip install opencv-python-headless"):
        OpenCVSource("/dev/video0", 15, size=(64, 48)).open()


def test_replay_plays_a_video_file_in_a_loop_in_rgb(tmp_path):
    cv2 = pytest.importorskip("cv2")  # installed in the board venv by `make`
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    colours_bgr = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]  # red, green, blue in OpenCV's order
    for bgr in colours_bgr:
        writer.write(np.full((48, 64, 3), bgr, dtype=np.uint8))
    writer.release()
    source = ReplaySource(video, width=32, height=32, fps=100)
    source.open()
    frames = [source.read() for _ in range(6)]
    source.close()
    assert source.describe() == f"replay video {video}"
    for index, frame in enumerate(frames):
        assert frame.shape == (24, 32, 3)  # scaled down to fit 32x32, aspect kept
        channel = int(np.argmax(frame.reshape(-1, 3).mean(axis=0)))
        assert channel == index % 3  # RGB order: red, green, blue, then the video again


def test_opencv_source_names_the_device_it_cannot_open():
    pytest.importorskip("cv2")
    source = OpenCVSource("/dev/video-none", 15, size=(64, 48))
    with pytest.raises(CameraError, match="cannot open camera /dev/video-none: is it plugged in"):
        source.open()


def test_picamera2_streams_the_models_input_size_unless_the_config_sets_one(monkeypatch):
    seen = {}

    class FakePicamera2:
        def __init__(self, number):
            pass

        def create_video_configuration(self, main, controls, buffer_count):
            seen["main"] = main
            return {}

        def configure(self, configuration):
            pass

        def start(self):
            pass

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    Picamera2Source(10, model_side=224).open()
    assert seen["main"] == {"size": (224, 224), "format": "BGR888"}  # the ISP crops and scales
    Picamera2Source(10, size=(640, 480), model_side=224).open()
    assert seen["main"]["size"] == (640, 480)


class FakeCapture:
    """A V4L2 camera through OpenCV: a request snaps to the supported mode nearest in area."""

    MODES = ((320, 240), (640, 480), (1280, 720))

    def __init__(self, device, backend):
        self.mode = (640, 480)
        self.requested = [0, 0]
        self.asked: list[tuple[int, int]] = []

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop, value):
        if prop in (3, 4):  # CAP_PROP_FRAME_WIDTH, CAP_PROP_FRAME_HEIGHT
            self.requested[prop - 3] = int(value)
            if prop == 4:
                want = self.requested[0] * self.requested[1]
                self.mode = min(self.MODES, key=lambda m: abs(m[0] * m[1] - want))
                self.asked.append(tuple(self.requested))
        return True

    def get(self, prop):
        return float(self.mode[prop - 3]) if prop in (3, 4) else 0.0

    def read(self):
        return True, np.zeros((self.mode[1], self.mode[0], 3), dtype=np.uint8)

    def release(self):
        pass


@pytest.mark.parametrize(
    ("model_side", "size", "mode"),
    [(224, None, (320, 240)), (300, None, (640, 480)), (224, (1280, 720), (1280, 720))],
    ids=["smallest-covering", "next-mode-up", "configured"],
)
def test_opencv_asks_for_the_smallest_mode_that_covers_the_model(
    monkeypatch, model_side, size, mode
):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    source = OpenCVSource("/dev/video0", 15, size=size, model_side=model_side)
    source.open()
    assert source.mode == mode and source.read().shape == (mode[1], mode[0], 3)
    assert source.describe() == f"opencv /dev/video0 {mode[0]}x{mode[1]}"


def test_replay_frames_cover_the_model_when_no_size_is_set(photo_folder):
    source = ReplaySource(photo_folder, 640, 480, fps=50, model_side=96)
    source.open()
    frame = source.read()
    source.close()
    assert min(frame.shape[:2]) == 96
