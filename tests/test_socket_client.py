"""The TCP tracker clients share one socket-client base: what it gives both of them."""

from __future__ import annotations

import time

from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
from gazelab.gaze.trackers.gazepoint import GazePointTracker, element
from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator
from gazelab.gaze.trackers.socket_client import SocketTrackerClient, describe


def _wait(cond, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


def test_both_tcp_clients_are_socket_clients() -> None:
    assert issubclass(EyeTribeTracker, SocketTrackerClient)
    assert issubclass(GazePointTracker, SocketTrackerClient)
    assert GazePointTracker(max_line_bytes=1234).max_line_bytes == 1234


def test_gazepoint_full_queue_drops_the_oldest_and_records_a_gap() -> None:
    """The bounded queue is the base's: samples pushed out are counted and become one gap
    (from the first to the last dropped sample) at the next drain, for every TCP client."""
    times = [10.0]
    tracker = GazePointTracker(screen_px=(1000, 500), max_buffer=3, clock=lambda: times[-1])
    for k in range(1, 6):
        times.append(10.0 + k)
        tracker.handle_line(element("REC", None, CNT=k, TIME=k / 60, BPOGX=0.5, BPOGY=0.5, BPOGV=1))
    samples = tracker.drain()
    assert [s.local_s for s in samples] == [13.0, 14.0, 15.0]
    assert tracker.stats.samples_dropped == 2
    (gap,) = tracker.gaps
    assert (gap.start_s, gap.end_s) == (11.0, 12.0)
    assert gap.reason.startswith("2 samples dropped")


def test_gazepoint_without_reconnect_ends_its_reader_once() -> None:
    """reconnect=False: a dropped connection is one fault and the reader ends (it used to
    spin, calling its disconnect handler again and again until close)."""
    sim = GazePointSimulator("127.0.0.1", 0, rate_hz=60).start()
    tracker = GazePointTracker("127.0.0.1", sim.port, reconnect=False)
    try:
        tracker.connect()
        tracker.start()
        assert _wait(lambda: tracker.stats.frames >= 5, 5.0)
        sim.stop()
        assert _wait(lambda: tracker._reader is not None and not tracker._reader.is_alive(), 5.0)
        assert not tracker.connected
        assert tracker.last_error == "connection lost"
        assert tracker.stats.reconnects == 0 and len(tracker.gaps) == 0
    finally:
        tracker.close()
        sim.stop()


def test_a_failed_handshake_leaves_nothing_running() -> None:
    """connect() that raises closes what it opened (the GazePoint client left its reader
    running when the server gave no usable screen size)."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(element("ACK", "SCREEN_SIZE", WIDTH=0, HEIGHT=0))
            time.sleep(0.5)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    tracker = GazePointTracker("127.0.0.1", srv.getsockname()[1], timeout_s=2.0)
    try:
        try:
            tracker.connect()
        except Exception as exc:
            assert "SCREEN_SIZE" in str(exc)
        else:
            raise AssertionError("a zero screen size was accepted")
        assert tracker._reader is not None and not tracker._reader.is_alive()
        assert not tracker.connected
    finally:
        srv.close()
        t.join(2.0)


def test_describe_is_one_short_line() -> None:
    assert describe(ValueError("x" * 500)).startswith("ValueError: xxx")
    assert len(describe(ValueError("x" * 500))) < 140
    assert describe(RuntimeError()) == "RuntimeError"
