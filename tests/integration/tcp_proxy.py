"""A TCP forwarder between Nexrel and a peer, which a test can cut and restore: the peer
(moto's S3) keeps its state while it is unreachable.

``cut()`` closes the listening socket and every open connection (callers then get
"connection refused", as from a host that went away); ``restore()`` listens again on the
same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.fixtures import free_port


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listening: socket.socket | None = None
        self._accepting: threading.Thread | None = None

    def __enter__(self) -> TcpProxy:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def restore(self) -> None:
        listening = socket.socket()
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", self.port))
        listening.listen(64)
        listening.settimeout(0.2)  # the accept loop sees a cut within this
        self._listening = listening
        self._accepting = threading.Thread(target=self._accept, args=(listening,), daemon=True)
        self._accepting.start()

    def cut(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.close()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listening: socket.socket) -> None:
        while self._listening is listening:
            try:
                client, _ = listening.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with self._lock:
                self._open.discard(src)
            src.close()
