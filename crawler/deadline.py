"""Wall-clock deadlines on HTTP exchanges made with requests.

requests' ``timeout`` bounds each ``recv()``, not the exchange: a server that sends one header
byte every few seconds, or a body that trickles, never trips it. A ``Deadline`` shuts down the
sockets used under it when its time is up, which ends whatever read is blocked on them, headers
included; ``session()`` makes a requests session whose connections report their socket to the
deadline active in the calling thread just before the response is read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_active = threading.local()


class Deadline:
    """Use as ``with Deadline(seconds) as d:`` around requests made in this thread."""

    def __init__(self, seconds: float):
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self.expired = False
        self.restart(seconds)

    def restart(self, seconds: float) -> None:
        """A new exchange: forget earlier sockets, give it ``seconds`` from now."""
        with self._lock:
            self._socks, self.expired = [], False
        self.extend(seconds)

    def extend(self, seconds: float) -> None:
        """Move the deadline to ``seconds`` from now, keeping the sockets in use."""
        with self._lock:
            self.at = time.monotonic() + seconds
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(0.0, seconds), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            if time.monotonic() < self.at:  # moved meanwhile; its own timer will come
                return
            self.expired = True
            for sock in self._socks:
                _shut(sock)

    def __enter__(self) -> Deadline:
        self._outer = getattr(_active, "deadline", None)
        _active.deadline = self
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        _active.deadline = self._outer


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    def getresponse(self, *args, **kwargs):
        deadline = getattr(_active, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.track(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def session() -> requests.Session:
    """A requests session whose requests obey the calling thread's ``Deadline``; no proxies or
    netrc from the environment (they would send requests elsewhere than the URL says)."""
    s = requests.Session()
    s.trust_env = False
    s.mount("http://", _Adapter())
    s.mount("https://", _Adapter())
    return s
