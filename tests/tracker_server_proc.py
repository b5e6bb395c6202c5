"""A misbehaving tracker server in its own process, for the tracker hardening tests.

Run as ``python tests/tracker_server_proc.py {gazepoint,eyetribe}``; it serves the
simulator of that protocol on a free port, prints ``port N`` and then obeys lines on
standard input:

``mute`` / ``unmute``  GazePoint: stop (resume) the data records; requests are still
                       answered (a server whose tracker stopped).
``deaf``               Eye Tribe: send nothing and ignore every request, heartbeats
                       included: a server that hangs for a while.
``sulk``               Eye Tribe: answer, but ignore requests to set push mode.
``hear``               Eye Tribe: behave again.
``quit``               stop and exit.

``--port N`` listens on port N (default: a free one): a restarted server takes its
predecessor's port. ``--product-rate TEXT`` makes the GazePoint server answer ``PRODUCT_ID`` with
``RATE="TEXT"``. A frozen server is this process under SIGSTOP.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import Any

from gazelab.gaze.trackers.gazepoint import element
from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator
from gazelab.gaze.trackers.simulator import EyeTribeSimulator

MUTE = threading.Event()
DEAF = threading.Event()
SULK = threading.Event()


class MoodyGazePoint(GazePointSimulator):
    product_rate: str | None = None

    def record(self, t_s: float, count: int, flags: dict[str, bool]) -> bytes:
        line = super().record(t_s, count, flags)
        return b"" if MUTE.is_set() else line

    def _handle(self, line: str, send: Callable[[bytes], None], flags: Any, alive: Any) -> None:
        if self.product_rate is not None and 'ID="PRODUCT_ID"' in line:
            send(element("ACK", "PRODUCT_ID", VALUE="GP3", RATE=self.product_rate))
            return
        super()._handle(line, send, flags, alive)


class MoodyEyeTribe(EyeTribeSimulator):
    def _handle(self, line: bytes, send: Callable[[dict[str, Any]], None], state: Any) -> None:
        if DEAF.is_set() or (SULK.is_set() and b'"push"' in line):
            return
        super()._handle(line, send, state)

    def _push_loop(self, send: Callable[[dict[str, Any]], None], state: Any, alive: Any) -> None:
        def gated(msg: dict[str, Any]) -> None:
            if not DEAF.is_set():
                send(msg)

        super()._push_loop(gated, state, alive)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("protocol", choices=("gazepoint", "eyetribe"))
    ap.add_argument("--product-rate")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server: Any
    if args.protocol == "gazepoint":
        server = MoodyGazePoint(port=args.port, rate_hz=60)
        server.product_rate = args.product_rate
    else:
        server = MoodyEyeTribe(port=args.port, rate_hz=60, heartbeat_ms=100)
    server.start()
    print(f"port {server.port}", flush=True)
    moods = {"mute": [MUTE], "unmute": [], "deaf": [DEAF], "sulk": [SULK], "hear": []}
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd in moods:
            for event in (MUTE, DEAF, SULK):
                event.set() if event in moods[cmd] else event.clear()
            print(f"ok {cmd}", flush=True)
    server.stop()
    return 0


def start_server(protocol: str, *extra: str) -> tuple[Any, int]:
    """This script in its own process: ``(Popen, port)`` once it listens (for the tests)."""
    import subprocess
    from pathlib import Path

    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), protocol, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[:1] == ["port"], first
    return proc, int(first[1])


def tell(proc: Any, command: str) -> None:
    """Send a command line and wait for its ``ok``."""
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == f"ok {command}"


def stop_server(proc: Any) -> None:
    import signal
    import subprocess

    try:
        proc.send_signal(signal.SIGCONT)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=5)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
