#!/usr/bin/env bash
# Makes sure the photo sources of `make eval` (tests/eval/sources.py) are installed: Debian's
# opencv-doc (OpenCV's sample photos), tuxpaint-stamps-default (photo cut-outs of objects) and
# mate-backgrounds (nature photos, and the table the cut-outs stand on). scikit-image, the fourth
# source, is in the board venv. Installs them with apt when run as root; nothing is downloaded
# at run time.
set -euo pipefail
missing=()
[ -f /usr/share/doc/opencv-doc/examples/data/fruits.jpg ] || missing+=(opencv-doc)
[ -d /usr/share/tuxpaint/stamps/animals ] || missing+=(tuxpaint-stamps-default)
[ -f /usr/share/backgrounds/mate/nature/Wood.jpg ] || missing+=(mate-backgrounds)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing the evaluation's photos with apt-get: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing packages with the evaluation's photos: ${missing[*]}. Install them with:" >&2
echo "    sudo apt-get install --no-install-recommends ${missing[*]}" >&2
echo "then run this command again." >&2
exit 1
