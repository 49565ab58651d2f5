"""The broker connection under access control: passwords, credentials, TLS verification.

mosquitto is configured by the test with `password_file` (made with mosquitto_passwd),
`allow_anonymous false` and a TLS listener whose certificates the test makes with openssl. The
daemon logs in with the right password (from `password_file` and from the systemd credential
in `$CREDENTIALS_DIRECTORY`), is refused with a wrong one (a clear log line, retries with
backoff, no crash) and refuses a broker whose certificate its CA did not sign. No password ever
appears in a log or in check-config's output.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from personalizer.config import parse_config
from tests.support.broker import Broker
from tests.support.certificates import ServerCertificate, make_ca, make_server_certificate
from tests.support.daemon_harness import Daemon, start_daemon

PASSWORD = "pz-Tr0ub4dor&3-horse"
WRONG_PASSWORD = "pz-wrong-battery-staple"
USERS = {"watcher": "watcher-pass-8d1f", "pz": PASSWORD}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    return make_server_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def secure_broker(certificate: ServerCertificate) -> Iterator[Broker]:
    """mosquitto with TLS only, allow_anonymous false and a password file."""
    with Broker(users=USERS, tls=certificate) as broker:
        yield broker


def _secret_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _mqtt(broker: Broker, ca: Path, **extra: object) -> dict[str, dict[str, object]]:
    return {"mqtt": {"username": "pz", "ca": str(ca), "keepalive": 5, **extra}}


def _no_password_in(daemon: Daemon) -> None:
    log = daemon.process.log()
    for secret in (PASSWORD, WRONG_PASSWORD):
        assert secret not in log


def test_password_file_and_tls_get_in(
    tmp_path: Path,
    secure_broker: Broker,
    certificate: ServerCertificate,
    bundle: Path,
    photo_frames: Path,
    daemons: list[Daemon],
) -> None:
    password_file = _secret_file(tmp_path / "mqtt.pass", PASSWORD + "\n")
    overrides = _mqtt(secure_broker, certificate.ca, password_file=str(password_file))
    daemon = start_daemon(tmp_path, secure_broker, bundle, photo_frames, "pz/tls", overrides)
    daemons.append(daemon)
    assert daemon.watch.command("save", {})["ok"]  # subscribed and answering, over TLS
    assert "MQTT: connected to" in daemon.process.log()
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "personalizer",
            "check-config",
            "--config",
            str(daemon.process.config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert PASSWORD not in check.stdout + check.stderr
    _no_password_in(daemon)


def test_systemd_credential_gets_in(
    tmp_path: Path,
    secure_broker: Broker,
    certificate: ServerCertificate,
    bundle: Path,
    photo_frames: Path,
    daemons: list[Daemon],
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    _secret_file(credentials / "mqtt_password", PASSWORD)
    daemon = start_daemon(
        tmp_path,
        secure_broker,
        bundle,
        photo_frames,
        "pz/cred",
        _mqtt(secure_broker, certificate.ca),
        env={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    daemons.append(daemon)
    assert daemon.watch.command("save", {})["ok"]
    _no_password_in(daemon)


def test_wrong_password_is_refused_with_backoff_and_no_crash(
    tmp_path: Path,
    secure_broker: Broker,
    certificate: ServerCertificate,
    bundle: Path,
    photo_frames: Path,
    daemons: list[Daemon],
) -> None:
    password_file = _secret_file(tmp_path / "mqtt.pass", WRONG_PASSWORD)
    daemon = start_daemon(
        tmp_path,
        secure_broker,
        bundle,
        photo_frames,
        "pz/wrong",
        _mqtt(secure_broker, certificate.ca, password_file=str(password_file)),
        wait_online=False,
    )
    daemons.append(daemon)
    time.sleep(8)
    assert daemon.process.alive(), daemon.process.log()
    log = daemon.process.log()
    refusals = [line for line in log.splitlines() if "refused the connection" in line]
    assert refusals and "Not authorized" in refusals[0], log
    assert "check mqtt.username and the password" in refusals[0]
    # Backoff 1 s doubling: attempts at about 0, 1, 3 and 7 s; a retry loop would make dozens.
    assert 2 <= len(refusals) <= 5, refusals
    assert "lost the connection" not in log  # it never had one
    assert daemon.watch.received("availability") == []
    _no_password_in(daemon)
    code, _ = daemon.process.terminate()
    assert code == 0
    _no_password_in(daemon)


def test_a_broker_certificate_from_another_ca_is_refused(
    tmp_path: Path,
    secure_broker: Broker,
    bundle: Path,
    photo_frames: Path,
    daemons: list[Daemon],
) -> None:
    other_ca, _ = make_ca(tmp_path / "other", "other-ca")
    password_file = _secret_file(tmp_path / "mqtt.pass", PASSWORD)
    daemon = start_daemon(
        tmp_path,
        secure_broker,
        bundle,
        photo_frames,
        "pz/ca",
        _mqtt(secure_broker, other_ca, password_file=str(password_file)),
        wait_online=False,
    )
    daemons.append(daemon)
    deadline = time.monotonic() + 15
    while "cannot connect" not in daemon.process.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    log = daemon.process.log()
    failures = [line for line in log.splitlines() if "MQTT: cannot connect" in line]
    assert failures and "CERTIFICATE_VERIFY_FAILED" in failures[0], log
    assert "check mqtt.ca" in failures[0]
    assert "MQTT: connected" not in log
    assert daemon.process.alive()
    assert daemon.watch.received("availability") == []
    _no_password_in(daemon)


def test_an_empty_credential_file_means_no_password(
    tmp_path: Path,
    bundle: Path,
    photo_frames: Path,
    daemons: list[Daemon],
) -> None:
    # scripts/install.sh creates /etc/personalizer/mqtt_password empty for brokers without one.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    _secret_file(credentials / "mqtt_password", "")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    document = {"model": {"bundle": str(bundle)}, "state": {"dir": str(tmp_path / "s")}}
    config = parse_config(document, tmp_path / "p.toml", env)
    assert config.mqtt.password is None and config.mqtt.password_source == ""
    with_user = parse_config({**document, "mqtt": {"username": "pz"}}, tmp_path / "p.toml", env)
    assert with_user.mqtt.password is None
    _secret_file(credentials / "mqtt_password", "\n")
    assert parse_config(document, tmp_path / "p.toml", env).mqtt.password is None

    with Broker() as broker:  # anonymous, as for a user without a password
        daemon = start_daemon(tmp_path, broker, bundle, photo_frames, "pz/anon", env=env)
        daemons.append(daemon)
        assert daemon.watch.command("save", {})["ok"]
