#!/usr/bin/env bash
# Makes sure the system programs the tests and the demo use are installed: mosquitto (the MQTT
# broker and mosquitto_passwd; tests and the demo start their own on a free loopback port, nothing
# is started here), openssl (the TLS tests make their certificates with it) and systemd-analyze
# (scores the systemd unit), and chromium with a font (the web page's tests drive it headless
# through Playwright, whose own browser download is not used). Installs them with apt when run
# as root.
set -euo pipefail
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || missing+=(mosquitto)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -n "$(fc-list 2>/dev/null)" ] || missing+=(fonts-liberation)
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
