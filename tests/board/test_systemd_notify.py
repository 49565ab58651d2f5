"""The notify protocol, received on a real datagram socket as systemd would."""

from __future__ import annotations

import os
import socket
import time

import pytest

from personalizer.systemd_notify import SystemdNotifier


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    messages = []
    sock.settimeout(0.2)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except TimeoutError:
        return messages


def test_lifecycle_messages_reach_the_socket(listener):
    path, sock = listener
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())}
    notifier = SystemdNotifier.from_environment(env)
    assert notifier is not None and notifier.watchdog_enabled
    notifier.ready()
    notifier.status("idle, 0 samples, 9.5 fps")
    notifier.status("idle, 0 samples, 9.5 fps")  # unchanged: not sent again
    notifier.watchdog()
    notifier.watchdog()  # within a quarter of WatchdogSec: rate-limited
    time.sleep(0.11)
    notifier.watchdog()
    notifier.stopping()
    assert received(sock) == [
        "READY=1",
        "STATUS=idle, 0 samples, 9.5 fps",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_abstract_socket_address():
    name = f"personalizer-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": f"@{name}"})
        notifier.ready()
        sock.settimeout(2)
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_no_socket_no_notifier_and_no_watchdog_for_another_pid(listener):
    path, _ = listener
    assert SystemdNotifier.from_environment({}) is None
    other = SystemdNotifier.from_environment(
        {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert not other.watchdog_enabled


def test_a_vanished_supervisor_does_not_raise(tmp_path):
    notifier = SystemdNotifier(str(tmp_path / "gone.sock"), watchdog_usec=1000)
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()
