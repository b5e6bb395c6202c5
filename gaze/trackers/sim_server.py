"""What the tracker simulators share: running until stopped (``with sim:``,
``serve_forever``), a threaded TCP server with one thread per client, and the check of
their integer settings."""

from __future__ import annotations

import socket
import threading
from typing import Any

from gazelab.gaze.trackers.base import TrackerError


class RunsUntilStopped:
    """``with sim:`` / :meth:`serve_forever` for a simulator with ``start()``, ``stop()`` and a
    ``_stop`` event (the TCP servers and the LSL outlet)."""

    _stop: threading.Event

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run until interrupted (``gazelab simulate-tracker``)."""
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()


class TcpSimulatorServer(RunsUntilStopped):
    """A threaded TCP server: listen on ``host:port`` (0 = a free port), one thread per
    client running :meth:`_client_loop`. Subclasses set ``busy_hint`` (what may hold the
    port) and implement the protocol."""

    busy_hint = "another simulator"
    host: str
    port: int

    def _init_server(self) -> None:
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Any:
        """Listen and serve in background threads.

        Raises
        ------
        TrackerError
            The address cannot be listened on (port in use, unknown host).
        """
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind((self.host, self.port))
        except (OSError, OverflowError) as exc:
            srv.close()
            why = getattr(exc, "strerror", None) or str(exc)
            raise TrackerError(
                f"cannot listen on {self.host}:{self.port} ({why}); is {self.busy_hint} "
                "running? Use --port to choose another port (0: any free one)"
            ) from None
        srv.listen(8)
        srv.settimeout(0.2)
        self._server = srv
        self.port = srv.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="sim-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for t in self._threads:
            t.join(timeout=2.0)

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._client_loop, args=(conn,), daemon=True)
            t.start()
            # keep the accept thread and live clients only: many short clients must not pile up
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)

    def _client_loop(self, conn: socket.socket) -> None:
        raise NotImplementedError


def _check_int(name: str, value: object, lo: int, hi: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TrackerError(f"simulator {name} {value!r} must be an integer in {lo}..{hi} ({hint})")
