"""`[model] delegate = "edgetpu"` and `device`: validated; a missing TPU falls back to the CPU."""

from __future__ import annotations

import pytest

from personalizer.config import ConfigError, load_config
from tests.support.daemon_harness import CLASSES
from tests.support.daemon_process import write_config


def config_with(tmp_path, bundle, **model):
    sections = {"model": {"bundle": str(bundle), "classes": list(CLASSES), **model}}
    return write_config(tmp_path / "tpu.toml", sections)


@pytest.mark.parametrize("device", ["usb", "pci", ":0", "usb:1", "pci:0"])
def test_edgetpu_devices_are_accepted(tmp_path, bundle, device):
    config = load_config(config_with(tmp_path, bundle, delegate="edgetpu", device=device))
    assert (config.model.delegate, config.model.device) == ("edgetpu", device)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"delegate": "edgetpu", "device": "gpu"}, 'model.device = "gpu": must name an Edge TPU'),
        ({"delegate": "edgetpu", "device": 0}, "model.device = 0: must be a string"),
        ({"device": "usb"}, 'applies to delegate = "edgetpu" only'),
        ({"delegate": "tpu"}, 'model.delegate = "tpu": must be one of "none", "edgetpu"'),
    ],
)
def test_bad_edgetpu_settings_name_the_key(tmp_path, bundle, model, message):
    with pytest.raises(ConfigError) as raised:
        load_config(config_with(tmp_path, bundle, **model))
    assert message in str(raised.value)


def test_the_daemon_runs_on_the_cpu_when_the_edgetpu_is_missing(run_daemon):
    daemon = run_daemon(overrides={"model": {"delegate": "edgetpu", "device": "usb"}})
    daemon.watch.wait_for("prediction")
    daemon.process.terminate()
    log = daemon.process.log()
    assert "libedgetpu.so.1" in log and "running the base model on the CPU" in log


CRASHING_LIBRARY = """
#include <stdlib.h>
/* What a libedgetpu that does not fit the runtime does: the process dies while loading. */
__attribute__((constructor)) static void crash(void) { abort(); }
"""


def test_a_delegate_that_crashes_the_daemon_is_skipped_at_the_next_start(run_daemon, tmp_path):
    import shutil
    import signal
    import subprocess

    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed for this test (apt install gcc)"
    lib = tmp_path / "lib"
    lib.mkdir()
    (tmp_path / "crash.c").write_text(CRASHING_LIBRARY)
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-o",
            str(lib / "libedgetpu.so.1"),
            str(tmp_path / "crash.c"),
        ],
        check=True,
    )
    env = {"LD_LIBRARY_PATH": str(lib)}
    overrides = {"model": {"delegate": "edgetpu"}}
    first = run_daemon(overrides=overrides, env=env, wait_online=False)
    code = first.process.wait(60)
    assert code == -signal.SIGABRT, (code, first.process.log())
    marker = first.state_dir / "edgetpu-loading"
    assert marker.exists()

    # What systemd's Restart=on-failure does next: the same start again.
    second = run_daemon(root="pz/after-crash", overrides=overrides, env=env)
    status = second.status(predicate=lambda s: bool(s["warnings"]))
    warning = " ".join(status["warnings"])
    assert "died loading the Edge TPU delegate" in warning and str(marker) in warning
    assert second.watch.wait_for("prediction", timeout=30)  # serving, on the CPU
    assert second.process.alive()
    assert "runs on the CPU" in second.process.log()
