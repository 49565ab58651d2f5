"""Building the service from a configuration: the state folder, the bundle, the parts.

Everything that can go wrong here is the configuration's fault (a state folder that cannot be
written, a bundle that cannot be used, TLS files, pins): it raises :class:`SetupError`, which
`personalizer run` turns into exit status 78 (EX_CONFIG), so systemd does not restart in a loop.
The Edge TPU guard (edgetpu_guard.py) keeps a delegate that crashed the process once from being
loaded again.
"""

from __future__ import annotations

import logging
from typing import Any

from ..camera import FrameSource
from ..config import Config
from ..edgetpu_guard import EdgeTpuGuard
from ..errors import BundleError, ClassListError, PersonalizerError, RuntimeNotAvailable
from ..gpio import GpioError
from ..model import TransferLearningModel
from ..mqtt import MqttSetupError
from ..notify import ServiceNotifier
from ..store import StateDirError, StateStore
from .service import Service

log = logging.getLogger(__name__)


class SetupError(PersonalizerError):
    """The service cannot be built from this configuration (exit 78); the message says why."""


def build_service(
    config: Config,
    *,
    source: FrameSource | None = None,
    notifier: ServiceNotifier | None = None,
    simulate: bool = False,
    gpio_factory: Any = None,
) -> Service:
    """Everything `personalizer run` starts, built from ``config`` (tests use it too).

    ``source``, ``notifier`` and ``gpio_factory`` replace the configured camera, the supervisor
    hooks and the pin factory. SetupError (naming which part and why) when a part cannot be
    built.
    """
    store = prepared_store(config)
    model, crashed = load_model(config)
    try:
        service = Service(
            config,
            model,
            store,
            source=source,
            notifier=notifier,
            simulate=simulate,
            gpio_factory=gpio_factory,
        )
    except (MqttSetupError, GpioError) as exc:
        raise SetupError(str(exc)) from None
    if crashed:
        service.engine.status.warn(crashed)
    return service


def prepared_store(config: Config) -> StateStore:
    """The state folder, created and checked (not opened yet)."""
    store = StateStore(
        config.state.dir,
        store_images=config.state.store_images,
        configured_classes=config.model.classes,
        configured_region=config.camera.region,
    )
    try:
        store.prepare()
    except StateDirError as exc:
        raise SetupError(str(exc)) from None
    return store


def load_model(config: Config) -> tuple[TransferLearningModel, str | None]:
    """The bundle loaded into the runtime model, and why the Edge TPU was skipped (if it was:
    it crashed a start before)."""
    log.info("loading bundle %s", config.model.bundle)
    delegate, guard = config.model.delegate, EdgeTpuGuard(config.state.dir)
    crashed = guard.crashed_before() if delegate == "edgetpu" else None
    if crashed:
        log.error("%s", crashed)
        delegate = None
    elif delegate == "edgetpu":
        guard.arm()
    try:
        model = TransferLearningModel(
            config.model.bundle,
            config.model.classes,
            runtime=config.model.runtime,
            num_threads=config.model.base_threads,
            delegate=delegate,
            edgetpu_device=config.model.device,
        )
    except (BundleError, ClassListError, RuntimeNotAvailable) as exc:
        raise SetupError(f"model.bundle {config.model.bundle} cannot be used: {exc}") from None
    finally:
        if delegate == "edgetpu":
            guard.disarm()
    return model, crashed
