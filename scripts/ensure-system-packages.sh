#!/usr/bin/env bash
# Makes sure the system programs the tests and the demo use are installed: mosquitto (the MQTT
# broker and mosquitto_passwd; tests and the demo start their own on a free loopback port, nothing
# is started here), openssl (the TLS tests make their certificates with it) and systemd-analyze
# (scores the systemd unit), and chromium with a font (the web page's tests drive it headless
# through Playwright, whose own browser download is not used), and GStreamer's RTSP server with
# the plugins its tests use (tests/support/rtsp_serve.py, run by the system python3, serves
# photos as MJPEG and H.264 over RTSP to the network camera tests). Installs them with apt when
# run as root.
set -euo pipefail
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || missing+=(mosquitto)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -n "$(fc-list 2>/dev/null)" ] || missing+=(fonts-liberation)
gst_check='import gi, sys
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
elements = {"appsrc": "base", "videoconvert": "base", "rtpjpegpay": "good", "rtph264pay": "good",
            "jpegdec": "good", "qtdemux": "good", "mp4mux": "good", "x264enc": "ugly"}
print(" ".join(sorted({"gstreamer1.0-plugins-" + p for e, p in elements.items()
                       if Gst.ElementFactory.find(e) is None})))'
if ! gst_missing="$(/usr/bin/python3 -c "$gst_check" 2>/dev/null)"; then
  missing+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
            gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
elif [ -n "$gst_missing" ]; then
  read -r -a gst_packages <<<"$gst_missing"
  missing+=("${gst_packages[@]}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing with apt-get: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing system packages: ${missing[*]}. Install them with:" >&2
echo "    sudo apt-get install ${missing[*]}" >&2
echo "then run this command again." >&2
exit 1
