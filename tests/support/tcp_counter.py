"""A TCP relay that counts the bytes each way: what a client and its broker send each other,
as they go on the wire (MQTT headers, topics, acknowledgements and all)."""

from __future__ import annotations

import socket
import threading
from typing import Self

from tests.support.broker import free_port


class CountingRelay:
    """Listens on 127.0.0.1:`port` and relays every connection to `host`:`upstream`."""

    def __init__(self, host: str, upstream: int) -> None:
        self.host, self.upstream = host, upstream
        self.port = free_port()
        self.down = 0  # broker -> client
        self.up = 0  # client -> broker
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = [self._listener]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((self.host, self.upstream))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            for source, target, way in ((client, server, "up"), (server, client, "down")):
                threading.Thread(
                    target=self._pipe, args=(source, target, way), name=f"relay-{way}", daemon=True
                ).start()

    def _pipe(self, source: socket.socket, target: socket.socket, way: str) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for sock in (source, target):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self._lock:
                setattr(self, way, getattr(self, way) + len(data))
            try:
                target.sendall(data)
            except OSError:
                return

    def counts(self) -> tuple[int, int]:
        """(bytes broker -> client, bytes client -> broker) so far."""
        with self._lock:
            return self.down, self.up

    def close(self) -> None:
        """Stop relaying."""
        self._closed.set()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
