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
