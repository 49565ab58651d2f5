"""`[web]` in the config file: defaults, the password, TLS files, `listen`, the page's URL."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from personalizer.config import ConfigError, parse_config
from tests.support.certificates import make_ca, make_server_certificate
from tests.support.daemon_process import write_config


def document(bundle: Path, tmp_path: Path, **web: object) -> dict:
    return {
        "model": {"bundle": str(bundle)},
        "state": {"dir": str(tmp_path / "state")},
        "web": dict(web),
    }


def problems(doc: dict, tmp_path: Path, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, tmp_path / "p.toml", environ or {})
    return [str(p) for p in caught.value.problems]


def test_defaults_are_off_on_every_address_with_the_systemd_credential(bundle, tmp_path):
    web = parse_config(document(bundle, tmp_path), tmp_path / "p.toml", {}).web
    assert web.enabled is False and web.listen == "0.0.0.0:8080"
    assert web.password_credential == "web_password" and web.password is None
    assert web.tls is False and web.url is None


def test_without_a_password_the_page_binds_loopback_only(bundle, tmp_path):
    web = parse_config(document(bundle, tmp_path, enabled=True), tmp_path / "p.toml", {}).web
    assert web.bind == ("127.0.0.1", 8080)
    assert web.url == "http://127.0.0.1:8080/"
    six = parse_config(
        document(bundle, tmp_path, enabled=True, listen="[::1]:9000"), tmp_path / "p.toml", {}
    ).web
    assert six.bind == ("::1", 9000) and six.url == "http://[::1]:9000/"


def test_password_from_a_file_or_the_systemd_credential_never_shows(bundle, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("open sesame\n")
    config = parse_config(
        document(bundle, tmp_path, enabled=True, password_file=str(secret)),
        tmp_path / "p.toml",
        {},
    )
    web = config.web
    assert web.password.get_secret_value() == "open sesame"
    assert web.password_source == f"file {secret}"
    for text in (repr(config), str(config), repr(web), config.summary()):
        assert "open sesame" not in text
    # Every address once a password is set; the URL names this board.
    assert web.bind == ("0.0.0.0", 8080)
    assert web.url == f"http://{socket.gethostname()}:8080/"
    assert f"web http://{socket.gethostname()}:8080/" in config.summary()

    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "web_password").write_text("from systemd")
    web = parse_config(
        document(bundle, tmp_path, enabled=True),
        tmp_path / "p.toml",
        {"CREDENTIALS_DIRECTORY": str(credentials)},
    ).web
    assert web.password.get_secret_value() == "from systemd"
    assert web.password_source == "systemd credential web_password"
    # The empty file scripts/install.sh creates means "no password".
    (credentials / "web_password").write_text("")
    web = parse_config(
        document(bundle, tmp_path, enabled=True),
        tmp_path / "p.toml",
        {"CREDENTIALS_DIRECTORY": str(credentials)},
    ).web
    assert web.password is None and web.bind[0] == "127.0.0.1"


@pytest.mark.parametrize(
    "listen", ["8080", "0.0.0.0", "0.0.0.0:0", "0.0.0.0:70000", "[zz]:80", "a b:80", ":8080"]
)
def test_listen_must_be_host_and_port(bundle, tmp_path, listen):
    found = problems(document(bundle, tmp_path, listen=listen), tmp_path)
    assert len(found) == 1 and found[0].startswith(f'web.listen = "{listen}": must be "HOST:PORT"')


def test_unknown_keys_unreadable_password_and_half_a_tls_pair_are_named(bundle, tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    found = problems(
        document(
            bundle, tmp_path, password_file="/no/such/pw", tls_cert=str(cert), password="hunter2"
        ),
        tmp_path,
    )
    assert any(p.startswith('web.password_file = "/no/such/pw": cannot be read') for p in found)
    assert "web.tls_key: missing; HTTPS needs both tls_cert and tls_key" in found
    unknown = [p for p in found if p.startswith("web.password =")]
    assert unknown and "hunter2" not in unknown[0] and 'did you mean "password_file"' in unknown[0]
    missing = problems(
        document(bundle, tmp_path, tls_cert="/no/cert.pem", tls_key="/no/key.pem"), tmp_path
    )
    assert 'web.tls_cert = "/no/cert.pem": no such file; give the PEM file\'s path' in missing


def test_a_certificate_and_a_key_that_do_not_belong_together_are_refused(bundle, tmp_path):
    server = make_server_certificate(tmp_path / "tls")
    _, other_key = make_ca(tmp_path / "other", "other")
    good = parse_config(
        document(bundle, tmp_path, enabled=True, tls_cert=str(server.cert),
                 tls_key=str(server.key)),
        tmp_path / "p.toml",
        {},
    ).web  # fmt: skip
    assert good.tls and good.url.startswith("https://127.0.0.1:8080")
    found = problems(
        document(bundle, tmp_path, tls_cert=str(server.cert), tls_key=str(other_key)), tmp_path
    )
    assert len(found) == 1
    assert found[0].startswith(f'web.tls_cert = "{server.cert}": cannot be used with web.tls_key')


def test_check_config_exits_78_naming_the_web_key(bundle, tmp_path):
    config_file = write_config(tmp_path / "p.toml", document(bundle, tmp_path, listen="nope"))
    done = subprocess.run(
        [sys.executable, "-m", "personalizer", "check-config", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert 'web.listen = "nope": must be "HOST:PORT"' in done.stderr
