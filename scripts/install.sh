#!/usr/bin/env bash
# Installs the personalizer daemon as a systemd service on Raspberry Pi OS Bookworm / Debian arm64.
#
#   sudo scripts/install.sh                 install or upgrade (idempotent)
#   sudo scripts/install.sh --uninstall     remove the service and the program (keeps config, state)
#   sudo scripts/install.sh --uninstall --purge   also remove config and state
#   sudo scripts/install.sh --instance NAME         also set up the instance NAME (one more camera):
#                                  /etc/personalizer/NAME.toml, /var/lib/personalizer/NAME,
#                                  the unit personalizer@NAME (with --uninstall: remove it)
#
# Options:
#   --runtime auto|tflite|litert   interpreter package (auto: tflite-runtime where it has a wheel,
#                                  i.e. CPython 3.9-3.11; ai-edge-litert elsewhere)
#   --root DIR                     install under DIR instead of / (packaging and tests; implies
#                                  --no-system)
#   --no-system                    skip apt, users/groups, udev and systemctl
#   --stream                       also install PyAV, the decoder of network cameras
#                                  ([camera] source = "stream": RTSP, HTTP MJPEG)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root=""
runtime="auto"
action="install"
purge=0
system=1
instance=""
stream=0

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) action="uninstall" ;;
    --purge) purge=1 ;;
    --runtime) runtime="${2:?--runtime needs auto, tflite or litert}"; shift ;;
    --root) root="${2:?--root needs a directory}"; system=0; shift ;;
    --no-system) system=0 ;;
    --instance) instance="${2:?--instance needs a name, e.g. garage}"; shift ;;
    --stream) stream=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done
case "$runtime" in auto|tflite|litert) ;; *) die "--runtime must be auto, tflite or litert" ;; esac
if [ -n "$instance" ]; then
  # The name becomes a file name, a state folder and a topic level (the daemon checks it too).
  [[ "$instance" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] ||
    die "--instance: \"$instance\" must be 1 to 32 letters, digits, _ or - (starting with a letter or digit)"
  [ "$instance" != "personalizer" ] || die "--instance: \"personalizer\" is the plain service's name; choose another"
fi

prefix="$root/opt/personalizer"
venv="$prefix/venv"
etc="$root/etc/personalizer"
state="$root/var/lib/personalizer"
unit_dir="$root/etc/systemd/system"
udev_rule="$root/etc/udev/rules.d/71-personalizer-edgetpu.rules"
groups=(gpio video plugdev apex)

if [ "$system" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
  die "run it as root: sudo $0 $*"
fi

systemd_running() { [ "$system" -eq 1 ] && [ -d /run/systemd/system ]; }

do_uninstall_instance() {
  if systemd_running; then
    systemctl disable --now "personalizer@$instance.service" 2>/dev/null || true
  fi
  if [ "$purge" -eq 1 ]; then
    rm -rf "$etc/$instance.toml" "$etc/$instance.camera_password" "$state/$instance"
    echo "instance $instance removed, with its configuration and state."
  else
    echo "instance $instance stopped and disabled. Kept: $etc/$instance.toml and $state/$instance;"
    echo "remove them with: sudo $0 --uninstall --purge --instance $instance"
  fi
}

do_uninstall() {
  if systemd_running; then
    systemctl disable --now personalizer.service 2>/dev/null || true
  fi
  rm -f "$unit_dir/personalizer.service" "$unit_dir/personalizer@.service" "$udev_rule"
  if systemd_running; then systemctl daemon-reload; fi
  rm -rf "$prefix"
  if [ "$purge" -eq 1 ]; then
    rm -rf "$etc" "$state"
    if [ "$system" -eq 1 ] && id personalizer >/dev/null 2>&1; then userdel personalizer || true; fi
    echo "personalizer removed, with its configuration and state."
  else
    echo "personalizer removed. Kept: $etc (configuration) and $state (samples, training state);"
    echo "remove them with: sudo $0 --uninstall --purge"
  fi
}

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

choose_runtime() {
  if [ "$runtime" != "auto" ]; then echo "$runtime"; return; fi
  # tflite-runtime 2.14 (the last release) has wheels for CPython 3.9-3.11 only.
  if "$venv/bin/python" -c 'import sys; sys.exit(0 if sys.version_info[:2] <= (3, 11) else 1)'; then
    echo tflite
  else
    echo litert
  fi
}

do_install() {
  local python=python3
  python_ok "$python" || die "Python 3.11 or newer is needed (found: $($python --version 2>&1))"
  if [ "$system" -eq 1 ]; then
    echo "==> system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv python3-pip >/dev/null
    # picamera2 comes from Raspberry Pi OS's apt (it needs that libcamera); elsewhere it is absent.
    if apt-cache show python3-picamera2 >/dev/null 2>&1; then
      apt-get install -y -qq --no-install-recommends python3-picamera2 >/dev/null
    fi
    echo "==> user and groups"
    for group in "${groups[@]}"; do
      getent group "$group" >/dev/null || groupadd --system "$group"
    done
    if ! id personalizer >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /var/lib/personalizer \
        --shell /usr/sbin/nologin --user-group personalizer
    fi
    usermod -a -G "$(IFS=,; echo "${groups[*]}")" personalizer
    echo "==> udev rules for the Coral Edge TPU"
    install -d "$(dirname "$udev_rule")"
    cat > "$udev_rule" <<'RULES'
# Coral USB Accelerator (before and after its firmware loads) and Coral PCIe/M.2 (apex).
SUBSYSTEM=="usb", ATTRS{idVendor}=="1a6e", ATTRS{idProduct}=="089a", GROUP="plugdev", MODE="0660"
SUBSYSTEM=="usb", ATTRS{idVendor}=="18d1", ATTRS{idProduct}=="9302", GROUP="plugdev", MODE="0660"
SUBSYSTEM=="apex", GROUP="apex", MODE="0660"
RULES
    udevadm control --reload-rules 2>/dev/null || true
  fi

  echo "==> program in $venv"
  install -d -m 0755 "$prefix"
  # System site-packages: picamera2 and libcamera from apt stay visible inside the venv.
  [ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
  local chosen
  chosen="$(choose_runtime)"
  if [ "$chosen" = "tflite" ]; then
    "$venv/bin/pip" install -q --disable-pip-version-check "numpy<2" "tflite-runtime==2.14.*"
  else
    "$venv/bin/pip" install -q --disable-pip-version-check "ai-edge-litert>=2"
  fi
  if [ "$stream" -eq 1 ]; then
    "$venv/bin/pip" install -q --disable-pip-version-check "$here/daemon[stream]"
  else
    "$venv/bin/pip" install -q --disable-pip-version-check "$here/daemon"
  fi
  echo "    interpreter: $chosen"

  echo "==> configuration in $etc"
  install -d -m 0750 "$etc"
  if [ ! -f "$etc/personalizer.toml" ]; then
    install -m 0640 "$here/config/personalizer.toml" "$etc/personalizer.toml"
    echo "    wrote $etc/personalizer.toml (edit it: bundle, classes, camera, MQTT broker)"
  else
    echo "    kept your $etc/personalizer.toml"
  fi
  # The unit hands this file to the daemon as the systemd credential mqtt_password (empty = none).
  [ -f "$etc/mqtt_password" ] || install -m 0600 /dev/null "$etc/mqtt_password"
  # ...and this one as web_password, the web page's ([web]; empty = the page on 127.0.0.1 only).
  [ -f "$etc/web_password" ] || install -m 0600 /dev/null "$etc/web_password"
  # ...and this one as camera_password, a network camera's ([camera] source = "stream").
  [ -f "$etc/camera_password" ] || install -m 0600 /dev/null "$etc/camera_password"

  echo "==> state directory $state"
  install -d -m 0700 "$state"
  if [ "$system" -eq 1 ]; then
    chown personalizer:personalizer "$state"
    chgrp personalizer "$etc" "$etc/personalizer.toml"
  fi

  echo "==> systemd unit"
  install -d "$unit_dir"
  install -m 0644 "$here/systemd/personalizer.service" "$unit_dir/personalizer.service"
  install -m 0644 "$here/systemd/personalizer@.service" "$unit_dir/personalizer@.service"
  if systemd_running; then systemctl daemon-reload; fi
  [ -z "$instance" ] || setup_instance

  "$venv/bin/personalizer" --version >/dev/null || die "the installed personalizer does not run"
  [ -z "$instance" ] || return 0
  cat <<NEXT

personalizer is installed. Next:
  1. Copy a bundle made by tflite-transfer-convert to the board, e.g. $etc/bundle/
  2. Edit $etc/personalizer.toml ([model] bundle, classes; [mqtt] host; [gpio] pins)
     and check it:  sudo -u personalizer $venv/bin/personalizer check-config --config $etc/personalizer.toml
  3. MQTT password, if your broker needs one: put it in $etc/mqtt_password
     Web page ([web] enabled = true): put its password in $etc/web_password
     Network camera ([camera] source = "stream", install.sh --stream): its password in
     $etc/camera_password
  4. Start it:      sudo systemctl enable --now personalizer
     Watch it:      journalctl -u personalizer -f
NEXT
}

# The next web port free among the instances' configs (the plain service has 8080).
next_port() {
  local port=8081 used
  used="$(sed -n 's/^listen = "[^"]*:\([0-9]*\)"$/\1/p' "$etc"/*.toml 2>/dev/null || true)"
  while grep -qx "$port" <<<"$used"; do port=$((port + 1)); done
  echo "$port"
}

setup_instance() {
  local config="$etc/$instance.toml" port
  echo "==> instance $instance"
  if [ ! -f "$config" ]; then
    port="$(next_port)"
    # The default config, with the instance's own state folder and web port; its topic root
    # defaults to personalizer/<hostname>/$instance (the unit sets PERSONALIZER_INSTANCE).
    sed -e "s#^dir = \"/var/lib/personalizer\"\$#dir = \"/var/lib/personalizer/$instance\"#" \
        -e "s#^listen = \"0.0.0.0:8080\"\$#listen = \"0.0.0.0:$port\"#" \
        "$here/config/personalizer.toml" > "$config.new"
    grep -q "^dir = \"/var/lib/personalizer/$instance\"\$" "$config.new" &&
      grep -q "^listen = \"0.0.0.0:$port\"\$" "$config.new" ||
      die "could not make $config from config/personalizer.toml (its [state] dir or [web] listen line changed)"
    chmod 0640 "$config.new" && mv "$config.new" "$config"
    echo "    wrote $config (state in $state/$instance, web page on port $port)"
  else
    echo "    kept your $config"
  fi
  [ -f "$etc/$instance.camera_password" ] || install -m 0600 /dev/null "$etc/$instance.camera_password"
  install -d -m 0700 "$state/$instance"
  if [ "$system" -eq 1 ]; then
    chown personalizer:personalizer "$state/$instance"
    chgrp personalizer "$config"
  fi
  cat <<NEXT

The instance $instance is set up. Next:
  1. Edit $config ([camera]: this instance's camera; [model] bundle, classes)
     and check it:  sudo -u personalizer PERSONALIZER_INSTANCE=$instance $venv/bin/personalizer check-config --config $config
  2. Start it:      sudo systemctl enable --now personalizer@$instance
     Watch it:      journalctl -u personalizer@$instance -f
NEXT
}

case "$action" in
  install) do_install ;;
  uninstall) if [ -n "$instance" ]; then do_uninstall_instance; else do_uninstall; fi ;;
esac
