"""A real RTSP server for the tests: GStreamer's gst-rtsp-server, serving JPEG files as a camera.

Run with the system Python (Debian's python3-gi and gir1.2-gst-rtsp-server-1.0), never imported
by the tests themselves: tests/support/stream_servers.py starts it as a subprocess. It uses the
standard library and GStreamer only, because the system Python has neither numpy nor Pillow.

    /usr/bin/python3 rtsp_serve.py --frames DIR [--port N] [--codec mjpeg|h264] [--fps F]
        [--user U --password P [--auth basic|digest]] [--transport tcp|udp|any]
    /usr/bin/python3 rtsp_serve.py --clip FILE.mp4 ...        (serve an H.264 MP4 as it is)
    /usr/bin/python3 rtsp_serve.py --frames DIR --encode FILE.mp4 --bitrate KBPS --fps F

Serving: the JPEG files of DIR (sorted by name) are cycled at --fps, each client getting a
pipeline of its own; MJPEG goes out as it is (RTP/JPEG), H.264 is encoded live with x264
(zerolatency, no B-frames, a key frame every 2 s, as network cameras send it). Prints
`ready PORT` once listening, then `frame N WALLTIME FILE` for each frame as it reaches the RTP
payloader, encoded (FILE: its position in DIR), so a test can tell which picture a client shows
and how old it is. --encode writes an MP4 clip of the frames instead (for the bench: decode
cost without a live encoder on the machine).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer, GstVideo  # noqa: E402

# Constant quality with a high cap on the rate: the test pictures change completely from one
# frame to the next, which x264 at a camera's rate (its default cap, 2 Mbit/s) answers with
# frames whose lower part still shows the picture before. One slice per frame (threads=1):
# zerolatency's sliced threads give several slices per frame, which FFmpeg's RTSP client (in
# PyAV's build and in OpenCV's alike) decodes into pictures mixed from several frames, while
# GStreamer's own client shows them whole; see the README's note on network cameras.
H264 = (
    "jpegdec ! videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency "
    "speed-preset=ultrafast threads=1 pass=qual quantizer=20 bitrate=20000 bframes=0 "
    "key-int-max={gop} ! video/x-h264,profile=main"
)


def _frames(folder: Path) -> list[bytes]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        sys.exit(f"no JPEG files in {folder}")
    return [p.read_bytes() for p in files]


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment (RTP/JPEG's caps need them)."""
    at = 2
    while at + 9 < len(data):
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            return int.from_bytes(data[at + 7 : at + 9], "big"), height
        at += 2 + length
    sys.exit("a frame is not a JPEG with a start-of-frame segment")


def _appsrc(fps: float, size: tuple[int, int]) -> str:
    num, denom = _fraction(fps)
    return (
        "appsrc name=src is-live=true format=time do-timestamp=true "
        f'caps="image/jpeg,width={size[0]},height={size[1]},framerate={num}/{denom}"'
    )


def _fraction(fps: float) -> tuple[int, int]:
    return (round(fps * 1000), 1000)


class Feeder:
    """Pushes the frames into one pipeline's appsrc at the frame rate, logging each one.

    Frames flow from the moment the media is configured (its stream description needs them);
    when the client starts playing, the encoder is asked for a key frame, so the client's first
    picture is whole, as a camera's is (what went out before PLAY never reached the client).
    """

    counter = 0  # frames sent, over all clients (a test follows one client at a time)

    def __init__(self, media: GstRtspServer.RTSPMedia, frames: list[bytes], fps: float) -> None:
        self.appsrc = media.get_element().get_child_by_name("src")
        self.frames = frames
        self.index = 0
        self.playing = False
        self.in_encoder: list[int] = []  # positions pushed, not yet at the payloader
        media.connect("new-state", self.state_changed)
        payloader = media.get_element().get_child_by_name("pay0")
        payloader.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.leaving)
        GLib.timeout_add(max(1, round(1000 / fps)), self.push)

    def state_changed(self, _media: GstRtspServer.RTSPMedia, state: int) -> None:
        """Ask for a key frame once the media plays."""
        if state == Gst.State.PLAYING and not self.playing:
            self.playing = True
            self.appsrc.send_event(
                GstVideo.video_event_new_downstream_force_key_unit(
                    Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, True, 0
                )
            )

    def push(self) -> bool:
        """Push the next frame; False (stop the timer) once the pipeline is gone."""
        position = self.index % len(self.frames)
        self.index += 1
        self.in_encoder.append(position)
        result = self.appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(self.frames[position]))
        return result == Gst.FlowReturn.OK

    def leaving(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        """Log a frame as sent when it reaches the payloader (encoded, going out): frames leave
        the encoder in order, one buffer each (no B-frames), so it is the oldest one pushed."""
        if self.in_encoder:
            Feeder.counter += 1
            print(f"frame {Feeder.counter} {time.time():.6f} {self.in_encoder.pop(0)}", flush=True)
        return Gst.PadProbeReturn.OK


def serve(args: argparse.Namespace) -> None:
    """Run the RTSP server until SIGTERM."""
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    frames = [] if args.clip else _frames(Path(args.frames))
    if args.clip:
        launch = f"( filesrc location={args.clip} ! qtdemux ! rtph264pay name=pay0 pt=96 )"
    elif args.codec == "mjpeg":
        launch = f"( {_appsrc(args.fps, _jpeg_size(frames[0]))} ! rtpjpegpay name=pay0 pt=26 )"
    else:
        encoder = H264.format(gop=max(1, round(args.fps * 2)))
        source = _appsrc(args.fps, _jpeg_size(frames[0]))
        launch = f"( {source} ! {encoder} ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    factory.set_launch(launch)
    factory.set_shared(False)
    protocols = {
        "tcp": GstRtsp.RTSPLowerTrans.TCP,
        "udp": GstRtsp.RTSPLowerTrans.UDP,
        "any": GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP,
    }
    factory.set_protocols(protocols[args.transport])
    if not args.clip:
        feeders = []  # kept alive as long as the server runs

        def configured(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
            feeders.append(Feeder(media, frames, args.fps))

        factory.connect("media-configure", configured)
    if args.user:
        _require_login(server, factory, args.user, args.password, args.auth)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print(f"ready {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()


def _require_login(server, factory, user: str, password: str, method: str) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    if method == "digest":
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role("viewer")
    permissions.add_permission_for_role("viewer", "media.factory.access", True)
    permissions.add_permission_for_role("viewer", "media.factory.construct", True)
    factory.set_permissions(permissions)


def encode(args: argparse.Namespace) -> None:
    """Write the frames (cycled to --count) as an H.264 MP4 clip at --bitrate kbit/s."""
    frames = _frames(Path(args.frames))
    source = _appsrc(args.fps, _jpeg_size(frames[0]))
    pipeline = Gst.parse_launch(
        f"{source.replace('is-live=true', 'is-live=false')} ! jpegdec ! videoconvert "
        f"! video/x-raw,format=I420 ! x264enc bitrate={args.bitrate} speed-preset=medium "
        f"bframes=0 key-int-max={max(1, round(args.fps * 2))} ! video/x-h264,profile=main "
        f"! mp4mux ! filesink location={args.encode}"
    )
    appsrc = pipeline.get_by_name("src")
    appsrc.set_property("do-timestamp", False)
    pipeline.set_state(Gst.State.PLAYING)
    num, denom = _fraction(args.fps)
    for index in range(args.count):
        buffer = Gst.Buffer.new_wrapped(frames[index % len(frames)])
        buffer.pts = Gst.util_uint64_scale(index, Gst.SECOND * denom, num)
        buffer.duration = Gst.util_uint64_scale(1, Gst.SECOND * denom, num)
        appsrc.emit("push-buffer", buffer)
    appsrc.emit("end-of-stream")
    message = pipeline.get_bus().timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if message.type == Gst.MessageType.ERROR:
        sys.exit(f"encoding failed: {message.parse_error()[0].message}")


def main() -> None:
    """Parse the arguments and serve (or encode)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", help="folder of JPEG files, played in name order")
    parser.add_argument("--clip", help="an H.264 MP4 file to serve instead of frames")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--path", default="/camera")
    parser.add_argument("--codec", choices=("mjpeg", "h264"), default="mjpeg")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--auth", choices=("basic", "digest"), default="basic")
    parser.add_argument("--transport", choices=("tcp", "udp", "any"), default="any")
    parser.add_argument("--encode", help="write an MP4 clip here instead of serving")
    parser.add_argument("--bitrate", type=int, default=1000, help="kbit/s, with --encode")
    parser.add_argument("--count", type=int, default=100, help="frames, with --encode")
    args = parser.parse_args()
    Gst.init(None)
    if args.encode:
        encode(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
