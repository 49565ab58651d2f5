"""The installed systemd unit, started the way systemd would start it, inside a chroot.

A chroot has no systemd, so this reads the unit scripts/install.sh installed and applies what of
it matters to the daemon's first start: ExecStart (with ``${CONFIGURATION_DIRECTORY}`` and
``%S`` expanded), User, Group, SupplementaryGroups, WorkingDirectory, UMask, the
StateDirectory/ConfigurationDirectory variables and LoadCredential (each file copied to a
credentials directory readable only by the service user, ``$CREDENTIALS_DIRECTORY``, as systemd
does; a missing file is an error, as it is for systemd). Sandboxing options are not applied:
the host's tests/board suite checks those with systemd-analyze.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.arm64.roots import Chroot
from tests.support.daemon_process import DaemonProcess

UNIT = "/etc/systemd/system/personalizer.service"
CREDENTIALS = "/run/credentials/personalizer.service"


@dataclass
class ServiceUnit:
    """The [Service] settings of a unit file, as lists of values per key."""

    settings: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> ServiceUnit:
        """Parse the [Service] section of the unit file at `path`."""
        unit = cls()
        section = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                unit.settings.setdefault(key.strip(), []).append(value.strip())
        return unit

    def one(self, key: str, default: str = "") -> str:
        """The last value of `key` (as systemd takes for single-valued settings)."""
        return self.settings.get(key, [default])[-1]

    def environment(self) -> dict[str, str]:
        """The variables systemd sets for the service."""
        env = {"CREDENTIALS_DIRECTORY": CREDENTIALS}
        if self.one("StateDirectory"):
            env["STATE_DIRECTORY"] = "/var/lib/" + self.one("StateDirectory")
        if self.one("ConfigurationDirectory"):
            env["CONFIGURATION_DIRECTORY"] = "/etc/" + self.one("ConfigurationDirectory")
        return env

    def expand(self, text: str) -> str:
        """`text` with the specifiers and variables the unit uses replaced."""
        text = text.replace("%S", "/var/lib").replace("%E", "/etc")
        for name, value in self.environment().items():
            text = text.replace("${" + name + "}", value).replace("$" + name, value)
        return text

    def exec_start(self) -> list[str]:
        """ExecStart as an argv."""
        return shlex.split(self.expand(self.one("ExecStart")))

    def credentials(self) -> list[tuple[str, str]]:
        """(name, source path) of every LoadCredential."""
        return [tuple(value.split(":", 1)) for value in self.settings.get("LoadCredential", [])]  # type: ignore[misc]


def start_command(root: Chroot) -> list[str]:
    """Set up what systemd would (credentials) and return the host command starting the unit."""
    unit = ServiceUnit.read(root.host_path(UNIT))
    user = unit.one("User", "root")
    uid, _ = root.ids(user)
    credentials = root.host_path(CREDENTIALS)
    shutil.rmtree(credentials, ignore_errors=True)
    credentials.mkdir(parents=True, mode=0o500)
    for name, source in unit.credentials():
        if not root.host_path(source).is_file():
            raise AssertionError(
                f"systemd would refuse to start the unit: LoadCredential={name}:{source} "
                "names a file that scripts/install.sh did not create"
            )
        copy = credentials / name
        shutil.copyfile(root.host_path(source), copy)
        os.chmod(copy, 0o400)
        os.chown(copy, uid, -1)
    os.chown(credentials, uid, -1)
    umask = unit.one("UMask", "0022")
    home = "/var/lib/" + unit.one("StateDirectory") if unit.one("StateDirectory") else "/"
    env = {
        **unit.environment(),
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
        "HOME": home,
        "USER": user,
        "LOGNAME": user,
    }
    return root.command(
        ["/bin/sh", "-c", f'umask {umask} && exec "$0" "$@"', *unit.exec_start()],
        user=user,
        groups=unit.one("SupplementaryGroups").split(),
        cwd=unit.expand(unit.one("WorkingDirectory", "/")),
        env=env,
    )


class InstalledService(DaemonProcess):
    """The installed daemon started as its unit says, in the root; its output in `log`."""

    def __init__(self, root: Chroot, log: Path) -> None:
        super().__init__(root.host_path("/etc/personalizer/personalizer.toml"))
        self.root = root
        self.log_path = log

    def start(self) -> InstalledService:
        """Start the daemon (returns at once)."""
        command = start_command(self.root)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        return self
