"""GazePoint Open Gaze API client: the gazelab simulator and a transcript-replay server."""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.base import Gap, Tracker
from gazelab.gaze.trackers.gazepoint import (
    GazePointTracker,
    OpenGazeError,
    element,
    parse_calib_result,
    parse_line,
    parse_record,
)
from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator
from tests.tracker_server_proc import start_server, stop_server, tell

SCREEN = (2560, 1440)
GEOMETRY = DisplayGeometry.from_diagonal(resolution_px=SCREEN)  # 52.36 px/deg, as the simulator


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# -- protocol (pure) -----------------------------------------------------------------------
def test_commands_are_single_elements_ended_by_crlf() -> None:
    assert element("SET", "ENABLE_SEND_POG_BEST", STATE=1) == (
        b'<SET ID="ENABLE_SEND_POG_BEST" STATE="1" />\r\n'
    )
    assert element("GET", "SCREEN_SIZE") == b'<GET ID="SCREEN_SIZE" />\r\n'
    assert element("SET", "CALIBRATE_ADDPOINT", X=0.5, Y=0.1) == (
        b'<SET ID="CALIBRATE_ADDPOINT" X="0.50000" Y="0.10000" />\r\n'
    )


def test_record_fractions_become_screen_pixels_and_time_ms() -> None:
    tag, attrs = parse_line(
        '<REC CNT="7" TIME="12.50000" FPOGX="0.5" FPOGY="0.5" FPOGS="12.1" FPOGD="0.4" '
        'FPOGID="3" FPOGV="1" BPOGX="0.25" BPOGY="0.75" BPOGV="1" />'
    )
    assert tag == "REC"
    s = parse_record(attrs, local_s=1.0, screen_px=SCREEN)
    assert (s.time_ms, s.x, s.y, s.fix, s.valid) == (12500.0, 640.0, 1080.0, True, True)
    s = parse_record({**attrs, "BPOGV": "0"}, local_s=1.0, screen_px=SCREEN)
    assert not s.valid and not s.fix


@pytest.mark.parametrize(
    "line",
    [
        '<REC TIME="1.0" BPOGX="0.5" BPOGY="0.5" />',  # no BPOGV
        '<REC BPOGX="0.5" BPOGY="0.5" BPOGV="1" />',  # no TIME
        '<REC TIME="1.0" BPOGX="1e400" BPOGY="0.5" BPOGV="1" />',  # overflows to inf
        '<REC TIME="1.0" BPOGX="1e300" BPOGY="0.5" BPOGV="1" />',  # absurdly far off
        '<REC TIME="1.0" BPOGX="nan" BPOGY="0.5" BPOGV="1" />',
        '<REC TIME="1.0" BPOGX="0.5" BPOGY="0.5" BPOGV="yes" />',
    ],
)
def test_malformed_records_are_refused(line: str) -> None:
    _, attrs = parse_line(line)
    with pytest.raises(OpenGazeError):
        parse_record(attrs, local_s=0.0, screen_px=SCREEN)


@pytest.mark.parametrize(
    "line",
    [
        '<REC TIME="1.0" BPOGX="0.5"',
        "REC TIME=1",
        '<!DOCTYPE r [<!ENTITY a "aaaa">]><REC TIME="&a;" />',
        "<REC><X/></REC>",
    ],
)
def test_lines_that_are_not_one_element_are_refused(line: str) -> None:
    with pytest.raises(OpenGazeError):
        parse_line(line)


def test_calibration_result_gives_per_point_errors_in_degrees() -> None:
    # The API manual's example, point 1 and 2 (screen fractions).
    _, attrs = parse_line(
        '<CAL ID="CALIB_RESULT" CALX1="0.50000" CALY1="0.50000" LX1="0.50229" LY1="0.50279" '
        'LV1="1" RX1="0.51467" RY1="0.50870" RV1="1" CALX2="0.85000" CALY2="0.15000" '
        'LX2="0.84943" LY2="0.14930" LV2="1" RX2="0.84600" RY2="0.14763" RV2="0" />'
    )
    res = parse_calib_result(attrs, screen_px=SCREEN, geometry=GEOMETRY)
    assert res.result and len(res.points) == 2
    p1, p2 = res.points
    assert (p1.x, p1.y) == (1280.0, 720.0)
    err_l = math.hypot(0.00229 * 2560, 0.00279 * 1440)
    assert p1.accuracy_left_deg == pytest.approx(GEOMETRY.px_to_deg(err_l))
    assert math.isnan(p2.accuracy_right_deg) and p2.state == 2
    assert res.deg == pytest.approx((p1.accuracy_deg + p2.accuracy_deg) / 2)
    bad = parse_calib_result({**attrs, "LV2": "0"}, screen_px=SCREEN, geometry=GEOMETRY)
    assert not bad.result and bad.points[1].state == 0


def test_tracker_time_stays_monotonic_when_the_server_restarts_it() -> None:
    tracker = GazePointTracker(screen_px=SCREEN)
    for t in ("10.0", "10.1", "0.0", "0.1"):  # TIME restarts at calibration
        tracker.handle_line(f'<REC TIME="{t}" BPOGX="0.5" BPOGY="0.5" BPOGV="1" />')
    times = [s.time_ms for s in tracker.drain()]
    assert times == pytest.approx([10000.0, 10100.0, 10100.0, 10200.0])
    assert tracker.stats.clock_resets == 1


# -- against the gazelab simulator ---------------------------------------------------------
def test_client_is_a_tracker_and_samples_flow_from_the_simulator() -> None:
    with GazePointSimulator(port=0, rate_hz=150, screen_px=SCREEN, seed=1) as sim:
        with GazePointTracker(port=sim.port) as tracker:
            assert isinstance(tracker, Tracker)
            assert tracker.screen_px == SCREEN and tracker.framerate == 150
            tracker.start()
            time.sleep(2.0)
            tracker.stop()
            samples = tracker.drain()
    assert len(samples) >= 150
    assert tracker.stats.samples_lost == 0 and tracker.stats.invalid_messages == 0
    t = np.array([s.time_ms for s in samples])
    np.testing.assert_allclose(np.diff(t), 1000.0 / 150, atol=0.02)  # TIME has 10 µs steps
    valid = [s for s in samples if s.valid]
    assert len(valid) > 0.8 * len(samples)
    xs = np.array([s.x for s in valid])
    assert xs.max() > 1.0 and xs.max() < SCREEN[0]  # pixels, not fractions
    assert any(s.fix for s in samples) and not all(s.fix for s in samples)


def test_calibration_through_the_simulator_is_parsed() -> None:
    targets = [(256.0, 144.0), (1280.0, 720.0), (2304.0, 1296.0)]
    shown: list[tuple[int, tuple[float, float]]] = []
    with GazePointSimulator(
        port=0, screen_px=SCREEN, calibrate_delay_s=0.05, calibration_error_deg=0.5
    ) as sim:
        with GazePointTracker(port=sim.port, geometry=GEOMETRY) as tracker:
            res = tracker.calibrate(
                targets, dwell_s=0.05, on_point=lambda i, xy: shown.append((i, xy))
            )
    assert [i for i, _ in shown] == [0, 1, 2]
    for (_, xy), target in zip(shown, targets, strict=True):
        assert xy == pytest.approx(target, abs=0.1)
    assert res.result and len(res.points) == 3
    assert 0.1 < res.deg < 1.5  # the simulator's 0.5° ± 0.17° per eye
    assert [(p.x, p.y) for p in res.points] == pytest.approx(targets, abs=0.1)


# -- against a transcript-replay server ----------------------------------------------------
class ReplayServer:
    """A tiny Open Gaze server: ACKs every GET/SET and, once ENABLE_SEND_DATA is on, sends
    canned lines (bytes, sent as given); ``scripts`` has one list per connection, and the
    server closes each connection after its lines except the last."""

    def __init__(self, scripts: list[list[bytes]]) -> None:
        self.scripts = scripts
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for n, script in enumerate(self.scripts):
            conn, _ = self.srv.accept()
            with conn:
                buf, enabled = b"", False
                while not enabled:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    *lines, buf = (buf + chunk).split(b"\n")
                    for line in lines:
                        self._ack(conn, line)
                        enabled = enabled or b"ENABLE_SEND_DATA" in line
                for line in script:
                    conn.sendall(line)
                    time.sleep(0.001)
                if n == len(self.scripts) - 1:
                    conn.settimeout(0.1)
                    while True:  # stay open, answering, until the client leaves
                        try:
                            chunk = conn.recv(4096)
                        except TimeoutError:
                            continue
                        except OSError:
                            return
                        if not chunk:
                            return
                        for line in chunk.split(b"\n"):
                            self._ack(conn, line)

    @staticmethod
    def _ack(conn: socket.socket, line: bytes) -> None:
        if not line.strip():
            return
        _, attrs = parse_line(line.decode())
        ident = attrs["ID"]
        if ident == "SCREEN_SIZE":
            conn.sendall(element("ACK", ident, X=0, Y=0, WIDTH=1000, HEIGHT=500))
        else:
            conn.sendall(element("ACK", ident, STATE=attrs.get("STATE", "1")))

    def close(self) -> None:
        self.srv.close()


def _rec(cnt: int, x: float = 0.5) -> bytes:
    return element("REC", None, CNT=cnt, TIME=cnt / 60.0, BPOGX=x, BPOGY=0.5, BPOGV=1)


def test_malformed_records_are_counted_invalid_and_the_stream_continues() -> None:
    script = [
        _rec(1),
        b'<REC CNT="2" TIME="0.03" BPOGX="0.5" BPOGY="0.5" BPOGV="1"\r\n',  # bad XML
        b'<REC CNT="3" TIME="0.05" BPOGY="0.5" BPOGV="1" />\r\n',  # missing BPOGX
        b'<REC CNT="4" TIME="0.06" BPOGX="1e999" BPOGY="0.5" BPOGV="1" />\r\n',  # huge
        b'<REC CNT="5" TIME="0.08" BPOGX="0.5" BPOGY="99999999999" BPOGV="1" />\r\n',
        b'<!DOCTYPE r [<!ENTITY a "aaaa">]><REC TIME="&a;" />\r\n',
        b'<REC CNT="6" TIME="' + b"9" * 50_000,  # overlong line, sent in pieces ...
        b"9" * 50_000 + b'" BPOGX="0.5" BPOGY="0.5" BPOGV="1" />\r\n',  # ... up to its end
        _rec(7, 0.25),
        b"\xff\xfe garbage\r\n",
        _rec(8, 0.75),
    ]
    server = ReplayServer([script])
    try:
        with GazePointTracker(port=server.port) as tracker:
            tracker.start()
            assert _wait(lambda: tracker.stats.frames >= 3, 5.0)
            time.sleep(0.1)
            samples = tracker.drain()
            assert tracker.connected
    finally:
        server.close()
    assert [s.x for s in samples] == [500.0, 250.0, 750.0]  # WIDTH=1000 from SCREEN_SIZE
    assert tracker.stats.oversized_lines == 1
    assert tracker.stats.invalid_messages == 7  # 5 bad records, 1 overlong, 1 garbage
    assert tracker.stats.samples_lost == 5  # CNT 2..6 never became samples


def test_dropped_connection_records_a_gap_and_reconnects() -> None:
    gaps = []
    server = ReplayServer([[_rec(1), _rec(2)], [_rec(10), _rec(11)]])
    try:
        with GazePointTracker(port=server.port, on_gap=gaps.append) as tracker:
            tracker.start()
            assert _wait(lambda: tracker.stats.frames >= 4, 5.0), tracker.stats
            samples = tracker.drain()
    finally:
        server.close()
    expected_ms = [1000 / 60 * k for k in (1, 2, 10, 11)]
    assert [s.time_ms for s in samples] == pytest.approx(expected_ms, abs=0.01)  # TIME: 5 decimals
    assert len(tracker.gaps) == 1 and gaps == tracker.gaps
    assert tracker.gaps[0].reason == "connection lost" and tracker.stats.reconnects == 1


def test_stop_after_close_never_raises() -> None:
    """A session ends by stopping and closing its tracker, and a simulator's owner may
    stop it again: nothing may raise then (it did: 'Bad file descriptor')."""
    from gazelab.gaze.trackers.gazepoint import GazePointTracker
    from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator

    sim = GazePointSimulator("127.0.0.1", 0, rate_hz=60).start()
    try:
        tracker = GazePointTracker("127.0.0.1", sim.port)
        tracker.connect()
        tracker.start()
        tracker.stop()
        tracker.close()
        tracker.stop()  # after close: a no-op
        tracker.close()
        assert not tracker.connected
    finally:
        sim.stop()


# -- a server in another process that freezes, goes quiet or answers nonsense ---------------
def _covered_s(gaps: list[Gap]) -> float:
    """Seconds covered by the union of the gaps."""
    total, end = 0.0, -math.inf
    for g in sorted(gaps, key=lambda g: g.start_s):
        total += max(0.0, g.end_s - max(g.start_s, end))
        end = max(end, g.end_s)
    return total


def _flowing(tracker: GazePointTracker, n: int, timeout_s: float) -> int:
    got = 0
    t_end = time.monotonic() + timeout_s
    while got < n and time.monotonic() < t_end:
        time.sleep(0.02)
        got += len(tracker.drain())
    return got


def test_a_frozen_server_is_a_gap_and_a_reconnect() -> None:
    """SIGSTOP on the server process: the connection stays open and says nothing. The client
    notices (it used to wait for ever, with no gap), reconnects, and data flows after SIGCONT."""
    proc, port = start_server("gazepoint")
    tracker = GazePointTracker("127.0.0.1", port, silence_s=0.3, timeout_s=2.0)
    try:
        tracker.connect()
        tracker.start()
        assert _flowing(tracker, 30, 5.0) >= 30
        os.kill(proc.pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        assert _wait(lambda: tracker.stats.gaps >= 1, 5.0), "the frozen server was not noticed"
        time.sleep(max(0.0, t_stop + 2.0 - time.monotonic()))
        t_cont = time.monotonic()
        os.kill(proc.pid, signal.SIGCONT)
        tracker.drain()
        assert _flowing(tracker, 30, 10.0) >= 30, f"no data after SIGCONT: {tracker.last_error}"
        assert tracker.connected
    finally:
        tracker.close()
        stop_server(proc)
    gaps = list(tracker.gaps)
    assert gaps[0].reason.startswith("the GazePoint server sent nothing for")
    assert gaps[0].start_s <= t_stop + 0.3  # from the last byte, not from when it was noticed
    assert _covered_s(gaps) >= (t_cont - t_stop) - 0.8
    assert tracker.stats.reconnects >= 1 and tracker.stats.silences >= 1


def test_records_that_stop_while_the_server_answers_are_a_gap() -> None:
    proc, port = start_server("gazepoint")
    tracker = GazePointTracker("127.0.0.1", port, silence_s=0.3, timeout_s=2.0)
    try:
        tracker.connect()
        tracker.start()
        assert _flowing(tracker, 30, 5.0) >= 30
        tell(proc, "mute")
        t_mute = time.monotonic()
        time.sleep(1.5)
        tracker.drain()
        tell(proc, "unmute")
        t_back = time.monotonic()
        assert _flowing(tracker, 30, 5.0) >= 30
    finally:
        tracker.close()
        stop_server(proc)
    assert len(tracker.gaps) == 1, tracker.gaps
    (gap,) = tracker.gaps
    assert gap.reason.startswith("no data records for") and gap.reason.endswith("answered")
    assert gap.start_s == pytest.approx(t_mute, abs=0.25)
    assert gap.end_s == pytest.approx(t_back, abs=0.5)
    assert tracker.stats.reconnects == 0


@pytest.mark.parametrize(("rate", "expected"), [("\u00b2", 0), ("1e9", 0), ("150", 150)])
def test_a_product_rate_that_is_not_a_count_is_ignored(rate: str, expected: int) -> None:
    """``RATE="²"``: str.isdigit() said yes, int() raised (a 34-line traceback at connect)."""
    proc, port = start_server("gazepoint", "--product-rate", rate)
    try:
        with GazePointTracker("127.0.0.1", port) as tracker:
            assert tracker.framerate == expected and tracker.product == "GP3"
    finally:
        stop_server(proc)
