"""Throw-away TLS certificates for a test broker, made with the `openssl` command line.

A private CA, and a server certificate it signs for 127.0.0.1/localhost (subjectAltName, key
identifiers and CA basic constraints included, so Python's default verification accepts it).
A second, unrelated CA lets a test show that a client trusting the wrong CA is refused.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_SERVER_EXTENSIONS = """\
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class ServerCertificate:
    """PEM files: the CA that signed the server certificate, the certificate and its key."""

    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("openssl is not installed; sudo apt-get install openssl")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA in `folder`: returns (certificate, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", *_EC, "-keyout", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN=personalizer test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return cert, key


def make_server_certificate(folder: Path) -> ServerCertificate:
    """A CA and a server certificate for 127.0.0.1 signed by it, in `folder`."""
    ca, ca_key = make_ca(folder, "ca")
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    extensions = folder / "server.ext"
    extensions.write_text(_SERVER_EXTENSIONS)
    _openssl(
        "req", "-new", *_EC, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
        cwd=folder,
    )  # fmt: skip
    return ServerCertificate(ca, cert, key)
