#!/usr/bin/env bash
# Makes sure the system programs are installed that `make demo` (argument `demo`) or the tests
# (argument `test`, the default) use, with apt-get when run as root; otherwise it says what to
# install.
#   demo: mosquitto (the broker the demo starts on a free loopback port) and mosquitto-clients
#         (mosquitto_sub / mosquitto_pub, for the README's examples).
#   test: the demo's, plus openssl (the TLS tests make their certificates), systemd-analyze
#         (scores the units), chromium with a font (the web page's tests drive it headless
#         through Playwright, whose own browser download is not used), debootstrap (the Debian
#         roots of the arm64 lane and of the live Home Assistant tests), and GStreamer's RTSP
#         server with the plugins its tests use (tests/support/rtsp_serve.py, run by the system
#         python3, serves photos as MJPEG and H.264 over RTSP to the network camera tests).
set -euo pipefail
mode="${1:-test}"
missing=()
add() { # add PACKAGE...: each once
  local package
  for package in "$@"; do
    [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
  done
}
need() { # need PACKAGE TEST...: PACKAGE when the test command fails
  local package="$1"; shift
  "$@" >/dev/null 2>&1 || add "$package"
}
need mosquitto bash -c 'command -v mosquitto || [ -x /usr/sbin/mosquitto ]'
need mosquitto command -v mosquitto_passwd
need mosquitto-clients command -v mosquitto_sub
if [ "$mode" = "test" ]; then
  need openssl command -v openssl
  need systemd command -v systemd-analyze
  need chromium test -x /usr/bin/chromium
  need fonts-liberation bash -c '[ -n "$(fc-list 2>/dev/null)" ]'
  need debootstrap command -v debootstrap
  gst_check='import gi, sys
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
elements = {"appsrc": "base", "videoconvert": "base", "rtpjpegpay": "good", "rtph264pay": "good",
            "jpegdec": "good", "qtdemux": "good", "mp4mux": "good", "x264enc": "ugly"}
print(" ".join(sorted({"gstreamer1.0-plugins-" + p for e, p in elements.items()
                       if Gst.ElementFactory.find(e) is None})))'
  if ! gst_missing="$(/usr/bin/python3 -c "$gst_check" 2>/dev/null)"; then
    add python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
        gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  elif [ -n "$gst_missing" ]; then
    read -r -a gst_packages <<<"$gst_missing"
    add "${gst_packages[@]}"
  fi
elif [ "$mode" != "demo" ]; then
  echo "usage: $0 [demo|test]" >&2
  exit 2
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
