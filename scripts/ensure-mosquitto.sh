#!/usr/bin/env bash
# Makes sure the mosquitto broker binary is installed (the tests and the demo start their own
# broker on a free loopback port; nothing is started here).
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "mosquitto is missing: installing it with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
  exit 0
fi
echo "mosquitto (the MQTT broker) is not installed. Install it with:" >&2
echo "    sudo apt-get install mosquitto" >&2
echo "then run this command again." >&2
exit 1
