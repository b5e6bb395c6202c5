"""The Eye Tribe client and its simulator under hostile input.

A tiny scripted server on 127.0.0.1 (:class:`ScriptedServer`) sends crafted
lines; the client must count every bad message and go on, turn every fault
(reader failure, silent tracker) into a recorded gap, a warning and a
reconnect, and keep its memory bounded whatever arrives. The simulator and the
``simulate-tracker`` command refuse bad settings with one clear line.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import re
import resource
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gazelab.annotation.capture import GazeCapture
from gazelab.gaze.trackers import protocol as P
from gazelab.gaze.trackers.eyetribe import EyeTribeTracker, TrackerError
from gazelab.gaze.trackers.simulator import EyeTribeSimulator, ReplaySource

HB_MS = 100  # a short heartbeat keeps the fault tests quick


# -- a scripted Eye Tribe server ---------------------------------------------------------------
def frame(t_ms: int, **override: Any) -> dict[str, Any]:
    """A valid pushed frame at tracker time ``t_ms``, with fields replaced by ``override``."""
    eye = {"raw": {"x": 10, "y": 20}, "avg": {"x": 10, "y": 20}, "psize": 20.0,
           "pcenter": {"x": 0.5, "y": 0.5}}  # fmt: skip
    f = {"timestamp": "2024-01-01 12:00:00.000", "time": t_ms, "fix": False, "state": 7,
         "raw": {"x": 100.0, "y": 200.0}, "avg": {"x": 100.0, "y": 200.0},
         "lefteye": eye, "righteye": eye}  # fmt: skip
    f.update(override)
    return f


def frame_line(t_ms: int, **override: Any) -> bytes:
    return P.encode(P.reply("tracker", "get", values={"frame": frame(t_ms, **override)}))


Send = Callable[..., None]
"""``send(*chunks)``: write raw bytes to the client, all chunks together."""


class ScriptedServer:
    """Answers ``get``/``set`` like the Eye Tribe server and runs a script once push is on.

    Parameters
    ----------
    on_push : ``on_push(send, connection_index)`` runs in its own thread when a
        client turns push mode on; ``send`` writes raw bytes.
    answer_heartbeats : reply to heartbeats (a silent server does not).
    answer_after_get : reply to anything after the first ``get`` (silent server: no).
    """

    def __init__(
        self,
        *,
        heartbeat_ms: int = HB_MS,
        on_push: Callable[[Send, int], None] | None = None,
        answer_heartbeats: bool = True,
        answer_after_get: bool = True,
    ) -> None:
        self.heartbeat_ms = heartbeat_ms
        self.on_push = on_push
        self.answer_heartbeats = answer_heartbeats
        self.answer_after_get = answer_after_get
        self.connections = 0
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(0.1)
        self.port = self.srv.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.srv.close()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            index = self.connections
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        lock = threading.Lock()

        def send(*chunks: bytes) -> None:
            with lock:  # one call's chunks go out together, never split by a heartbeat reply
                for data in chunks:
                    conn.sendall(data)

        splitter = P.LineSplitter()
        answered_get = False
        try:
            while not self._stop.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    return
                for line in splitter.feed(chunk):
                    msg = json.loads(line)
                    cat, req, values = msg.get("category"), msg.get("request"), msg.get("values")
                    if answered_get and not self.answer_after_get:
                        continue
                    if cat == "heartbeat":
                        if self.answer_heartbeats:
                            send(P.encode(P.reply("heartbeat", None)))
                    elif req == "get":
                        answered_get = True
                        send(P.encode(P.reply("tracker", "get", values={
                            "heartbeatinterval": self.heartbeat_ms, "framerate": 60,
                            "iscalibrated": True, "screenresw": 2560, "screenresh": 1440})))  # fmt: skip
                    elif req == "set":
                        send(P.encode(P.reply("tracker", "set")))
                        if values.get("push") and self.on_push is not None:
                            threading.Thread(
                                target=self._run_script, args=(send, index), daemon=True
                            ).start()
        except OSError:
            return

    def _run_script(self, send: Send, index: int) -> None:
        assert self.on_push is not None
        try:
            self.on_push(send, index)
        except OSError:
            pass  # the client went away


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


class FakeStore:
    """What :class:`GazeCapture` writes, kept in lists."""

    def __init__(self) -> None:
        self.gaps: list[tuple[float, float | None, str]] = []
        self.events: list[str] = []
        self.samples = 0

    def add_gap(self, session_id: int, start: float, end: float | None, reason: str) -> None:
        self.gaps.append((start, end, reason))

    def add_event(self, session_id: int, kind: str, local_s: float, **kw: Any) -> None:
        self.events.append(kind)

    def add_tagged_samples(self, session_id: int, batch: list[Any]) -> int:
        self.samples += len(batch)
        return len(batch)


def capture_of(tracker: EyeTribeTracker) -> tuple[GazeCapture, FakeStore]:
    store = FakeStore()
    protocol = SimpleNamespace(
        trial_index=0, phase=SimpleNamespace(value="image"), phase_at=lambda t: (0, "image")
    )
    return GazeCapture(tracker, store, 1, protocol, batch_ms=0.0), store  # type: ignore[arg-type]


# -- item 4: a malformed frame is one invalid message ------------------------------------------
HOSTILE_LINES: list[bytes] = [
    b'{"category":"tracker","statuscode":200,"values":{"frame":'
    + json.dumps(frame(1)).replace('"time": 1', '"time": 1e400').encode()
    + b"}}",  # time parses as inf
    b'{"category":"tracker","statuscode":200,"values":{"frame":'
    + json.dumps(frame(1)).replace('"time": 1', '"time": 1' + "0" * 5000).encode()
    + b"}}",  # 5001 digits: json refuses it with ValueError (Python's int digit limit)
    frame_line(1, avg={"x": 10**400, "y": 1}),  # a 401-digit int: float() overflows
    frame_line(1, state=10**300),
    frame_line(1, time="12"),
    frame_line(1, fix=1),
    frame_line(1, lefteye=[1, 2]),
    frame_line(1, timestamp=None),
    P.encode(P.reply("tracker", "get", values={"frame": [1, 2, 3]})),
    b"[1, 2, 3]",
    b'"just a string"',
    b"null",
    b"\xff\xfe\x00 not utf-8",
    b'{"category": ["not", "a", "string"]}',
    b'{"category": "tracker", "statuscode": [800], "request": {"a": 1}}' + b"",
    b"[" * 100_000,  # nested too deep for the JSON parser
]
N_BAD = len(HOSTILE_LINES) - 1  # the unhashable-statuscode reply is valid JSON nobody waits for


def test_handle_line_counts_hostile_lines_and_never_raises() -> None:
    client = EyeTribeTracker(clock=lambda: 1.0)
    for line in HOSTILE_LINES:
        client.handle_line(line.rstrip(b"\n"))
    assert client.stats.invalid_messages == N_BAD
    assert client.stats.frames == 0
    client.handle_line(frame_line(5).rstrip(b"\n"))
    assert client.stats.frames == 1 and len(client.drain()) == 1


def test_malformed_frames_over_the_socket_leave_the_reader_alive() -> None:
    def script(send: Send, index: int) -> None:
        send(frame_line(1))
        for line in HOSTILE_LINES:
            send(line.rstrip(b"\n") + b"\n")
        for t in range(2, 7):
            send(frame_line(t))

    with ScriptedServer(on_push=script) as server:
        with EyeTribeTracker(port=server.port) as client:
            client.start()
            got: list[Any] = []
            wait_for(lambda: (got.extend(client.drain()), len(got) >= 6)[1], 5, "6 good frames")
            assert [s.time_ms for s in got] == [1, 2, 3, 4, 5, 6]
            assert client.stats.invalid_messages == N_BAD
            assert client.connected and client._reader is not None and client._reader.is_alive()
            assert not client.gaps and client.stats.reconnects == 0


# -- item 4: a reader that fails is a gap, a warning and a reconnect ---------------------------
def test_reader_failure_is_a_gap_a_warning_and_a_reconnect(monkeypatch) -> None:
    def script(send: Send, index: int) -> None:
        t = index * 100_000
        while True:  # 200 Hz until the client goes away
            t += 5
            send(frame_line(t))
            time.sleep(0.005)

    feed = P.LineSplitter.feed
    calls = {"n": 0}
    mine: list[P.LineSplitter] = []  # only this client's splitter fails: a reader thread an
    # earlier test left behind in this process must not take the injected failure

    def failing_feed(self: P.LineSplitter, chunk: bytes) -> list[bytes]:
        if mine and self is mine[0]:
            calls["n"] += 1
            if calls["n"] == 40:
                raise RuntimeError("injected reader failure")
        return feed(self, chunk)

    monkeypatch.setattr(P.LineSplitter, "feed", failing_feed)
    with ScriptedServer(on_push=script) as server:
        with EyeTribeTracker(port=server.port) as client:
            mine.append(client._splitter)
            capture, store = capture_of(client)
            # Hold the reconnect back for 0.5 s so that the outage is visible to polling.
            open_ = client._open
            hold_until = [0.0]

            def slow_open() -> None:
                if time.monotonic() < hold_until[0]:
                    raise TrackerError("held back by the test")
                open_()

            monkeypatch.setattr(client, "_open", slow_open)
            hold_until[0] = time.monotonic() + 3600
            client.start()
            wait_for(lambda: (capture.poll(), not client.connected)[1], 5, "the reader failure")
            hold_until[0] = time.monotonic() + 0.5
            capture.poll()
            assert not capture.connected
            assert "reader failed" in (capture.warning or "")
            assert "RuntimeError: injected reader failure" in (capture.warning or "")
            lost_at = client.clock()
            wait_for(lambda: (capture.poll(), bool(store.gaps))[1], 5, "the gap in the store")
            assert client.connected and client.stats.reconnects == 1
            assert client.stats.reader_faults == 1
            (start, end, reason) = store.gaps[0]
            assert "reader failed" in reason and end is not None and end - start >= 0.4
            assert capture.warning and capture.warning.startswith("eye tracker")
            assert "tracker_lost" in store.events and "tracker_gap" in store.events
            # samples flow again, from the second connection (tracker time >= 100 000)
            got: list[Any] = []
            wait_for(
                lambda: (got.extend(client.drain()), sum(s.time_ms > 100_000 for s in got) >= 20)[
                    1
                ],
                5,
                "samples after the reconnect",
            )
            assert all(s.local_s > lost_at for s in got if s.time_ms > 100_000)
    assert server.connections == 2


def test_a_reader_thread_that_ends_is_restarted_with_a_gap(monkeypatch) -> None:
    """Even an exception no handler catches (SystemExit ends a thread quietly) is noticed."""
    died: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    with ScriptedServer() as server:
        with EyeTribeTracker(port=server.port) as client:
            read = client._read_connection
            calls = {"n": 0}

            def dies_once() -> tuple[str, float | None]:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise SystemExit("injected thread death")
                return read()

            monkeypatch.setattr(client, "_read_connection", dies_once)
            client._break_link("test: start over")  # the next connection's reader dies
            wait_for(lambda: len(client.gaps) >= 2, 5, "the restarted reader's gap")
            assert client.gaps[-1].reason == "the reader thread ended unexpectedly"
            assert client.stats.reader_faults == 1
            wait_for(lambda: client.connected and client._reader.is_alive(), 2, "a live reader")
            assert client.get("framerate")["framerate"] == 60  # replies are read again
    assert [type(e.exc_value) for e in died] == [SystemExit]


def test_connect_to_a_server_that_never_answers_fails_and_leaves_nothing_running() -> None:
    with socket.create_server(("127.0.0.1", 0)) as mute:  # never accepts: the kernel does
        client = EyeTribeTracker(port=mute.getsockname()[1], timeout_s=0.3)
        t0 = time.monotonic()
        with pytest.raises(TrackerError, match="no reply from the tracker"):
            client.connect()
        assert time.monotonic() - t0 < 3.0
        assert client._reader is not None and not client._reader.is_alive()
        assert client._heart is None and not client.connected


# -- item 6: a silent tracker is noticed within 2 heartbeat intervals --------------------------
def test_silent_tracker_is_noticed_within_two_heartbeat_intervals(capsys) -> None:
    with ScriptedServer(answer_after_get=False) as server:
        gaps: list[Any] = []
        client = EyeTribeTracker(port=server.port, on_gap=gaps.append)
        client.connect()  # the server answered the get: its last words
        capture, store = capture_of(client)
        wait_for(lambda: bool(gaps), 3, "the silence")
        latency = gaps[0].end_s - gaps[0].start_s
        with capsys.disabled():
            print(f"\nsilent tracker noticed (and reconnected) {latency * 1000:.0f} ms after "
                  f"its last message; heartbeat {HB_MS} ms")  # fmt: skip
        assert latency < 2 * HB_MS / 1000
        assert "sent nothing" in gaps[0].reason
        assert client.stats.silences >= 1 and client.stats.reconnects >= 1
        wait_for(lambda: server.connections >= 2, 2, "the reconnect")  # its accept() may lag
        capture.poll()
        assert store.gaps and "sent nothing" in store.gaps[0][2]
        assert "sent nothing" in (capture.warning or "")
        # Ending the session with a tracker that will never answer again: no error, no hang.
        t0 = time.monotonic()
        client.stop()
        capture.close()
        client.close()
        assert time.monotonic() - t0 < 3.0


def test_a_quiet_tracker_that_answers_heartbeats_is_not_silent() -> None:
    with ScriptedServer() as server:
        with EyeTribeTracker(port=server.port) as client:
            time.sleep(1.0)  # 10 heartbeat intervals without push: heartbeat replies only
            assert client.stats.heartbeats_sent >= 3  # nominally 10; fewer on a loaded machine
            assert client.stats.silences == 0 and not client.gaps and client.connected


# -- item 5: bounded memory --------------------------------------------------------------------
def test_line_splitter_drops_an_over_long_line_in_linear_time() -> None:
    s = P.LineSplitter(max_line_bytes=1000)
    assert s.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert s.feed(b":2}\n") == [b'{"b":2}']
    chunk = b"x" * 65536
    for _ in range(800):  # 50 MiB without a newline: never more than the limit is held
        assert s.feed(chunk) == []
        assert s.pending_bytes <= 1000
    assert s.feed(b"tail\nnext\n") == [b"next"]
    assert s.dropped == 1
    assert s.feed(b"y" * 1001 + b"\nok\n") == [b"ok"] and s.dropped == 2


def test_full_sample_queue_drops_the_oldest_and_records_a_gap() -> None:
    now = [0.0]
    client = EyeTribeTracker(clock=lambda: now[0], max_queued_samples=10)
    for k in range(25):
        now[0] = k * 0.01
        client.handle_line(frame_line(k))
    got = client.drain()
    assert [s.time_ms for s in got] == list(range(15, 25))
    assert client.stats.samples_dropped == 15
    (gap,) = client.gaps
    assert (gap.start_s, gap.end_s) == (0.0, pytest.approx(0.14))
    assert gap.reason.startswith("15 samples dropped")
    assert client.drain() == [] and len(client.gaps) == 1


def test_notifications_are_bounded() -> None:
    client = EyeTribeTracker(max_notifications=5)
    note = json.dumps(P.reply("tracker", "get", P.STATUS_CALIBRATION_CHANGED, values={"k": 1}))
    for _ in range(100):
        client.handle_line(note)
    assert len(client.notifications) == 5
    assert client.stats.notifications == 100 and client.stats.notifications_dropped == 95


FLOOD_LINE_MB = 200
MEMORY_BOUND_MB = 48


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def test_flood_of_frames_notifications_and_a_huge_line_keeps_memory_bounded(capsys) -> None:
    """Soak (about 8 s): memory stays bounded and frames sent after the flood arrive."""
    frames_batch = frame_line(7) * 500
    note = P.encode(P.reply("tracker", "get", P.STATUS_CALIBRATION_CHANGED,
                            values={"iscalibrated": True, "pad": "n" * 200}))  # fmt: skip
    done = threading.Event()

    def script(send: Send, index: int) -> None:
        end = time.monotonic() + 5.0
        while time.monotonic() < end:  # frames and notifications, interleaved
            send(frames_batch)
            send(note * 500)
        blob = b"z" * 2**20
        head, tail = b'{"category": "tracker", "values": "', b'"}\n'
        send(head, *[blob] * FLOOD_LINE_MB, tail)  # one line of FLOOD_LINE_MB MiB, 1 MiB chunks
        for t in range(10**9, 10**9 + 50):
            send(frame_line(t))
        done.set()

    peak_rss = [0.0]
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.is_set():
            peak_rss[0] = max(peak_rss[0], _rss_mb())
            time.sleep(0.005)

    with ScriptedServer(heartbeat_ms=5000, on_push=script) as server:
        with EyeTribeTracker(port=server.port) as client:
            gc.collect()
            rss0, maxrss0 = _rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            tracemalloc.start()
            t0 = time.monotonic()
            client.start()
            n, late = 0, 0
            while late < 50 and time.monotonic() - t0 < 40:
                time.sleep(0.02)  # a GUI poll
                got = client.drain()
                n += len(got)
                late += sum(s.time_ms >= 10**9 for s in got)
            elapsed = time.monotonic() - t0
            traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            stop.set()
            sampler.join()
            maxrss_delta = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss0) / 1024
            stats = client.stats
            assert done.is_set() and late == 50
            assert client.connected and stats.reconnects == 0 and stats.reader_faults == 0
    with capsys.disabled():
        print(
            f"\nflood: {n} frames, {stats.notifications} notifications, one {FLOOD_LINE_MB} MiB "
            f"line in {elapsed:.1f} s; kept notifications {len(client.notifications)}, "
            f"oversized lines {stats.oversized_lines}; peak RSS +{peak_rss[0] - rss0:.1f} MiB "
            f"(maxrss +{maxrss_delta:.1f} MiB), tracemalloc peak {traced_peak:.1f} MiB; "
            f"bound {MEMORY_BOUND_MB} MiB"
        )
    assert stats.oversized_lines == 1 and stats.invalid_messages == 1
    assert stats.notifications > 1000 and len(client.notifications) == 100
    assert n > 1000
    assert traced_peak < MEMORY_BOUND_MB
    assert peak_rss[0] - rss0 < MEMORY_BOUND_MB


# -- item 12: the simulator refuses bad settings and survives bad requests ---------------------
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"port": 99999}, "port 99999"),
        ({"port": -1}, "port -1"),
        ({"rate_hz": 0}, "rate 0"),
        ({"rate_hz": 5000}, "rate 5000"),
        ({"heartbeat_ms": 0}, "heartbeat interval (ms) 0"),
    ],
)
def test_simulator_refuses_bad_settings(kwargs: dict[str, int], named: str) -> None:
    with pytest.raises(TrackerError, match=re.escape(named)):
        EyeTribeSimulator(**kwargs)


def test_simulator_refuses_a_port_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(TrackerError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            EyeTribeSimulator(port=port).start()


GOOD_ROW = '{"t_ms": 0, "x": 1, "y": 2}'
BAD_REPLAYS = {
    "missing": (None, "does not exist"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not UTF-8"),
    "transcript": (b'12.5 < {"category":"heartbeat","statuscode":200}\n', "line 1: not JSON"),
    "not object": (f"{GOOD_ROW}\n[1, 2]\n".encode(), "line 2: not a JSON object"),
    "no x": (f'{GOOD_ROW}\n{{"t_ms": 5, "y": 2}}\n'.encode(), "line 2: x must be a number"),
    "inf": (f'{GOOD_ROW}\n{{"t_ms": 5, "x": 1e400, "y": 2}}\n'.encode(), "x must be finite"),
    "huge int": (f'{{"t_ms": 1{"0" * 5000}, "x": 1, "y": 2}}'.encode(), "line 1: not JSON"),
    "state": (b'{"t_ms": 0, "x": 1, "y": 2, "state": 300}', "state must be an integer"),
    "backwards": (f'{GOOD_ROW}\n{{"t_ms": 0, "x": 1, "y": 2}}'.encode(), "does not increase"),
    "empty": (b"\n\n", "holds no frames"),
}


@pytest.mark.parametrize("case", list(BAD_REPLAYS))
def test_replay_source_refuses_bad_files(tmp_path: Path, case: str) -> None:
    content, message = BAD_REPLAYS[case]
    path = tmp_path / "gaze.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TrackerError, match=message) as err:
        ReplaySource(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_simulator_answers_malformed_requests_and_drops_a_broken_client_with_one_line(
    monkeypatch, caplog
) -> None:
    thread_errors: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    caplog.set_level(logging.WARNING, logger="gazelab.gaze.trackers.simulator")
    with EyeTribeSimulator(port=0, heartbeat_ms=2000) as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as conn:
            reader = conn.makefile("rb")
            bad = [b"\xff\xfe{", b'{"category": 1' + b"0" * 5000 + b"}", b"[1]",
                   b'{"category": "calibration", "request": "start", "values": {"pointcount": 9}}',
                   b'{"category": "calibration", "request": "pointstart", "values": {"x": "a"}}',
                   b"q" * 100_000]  # fmt: skip
            for line in bad:
                conn.sendall(line + b"\n")
            codes = [json.loads(reader.readline())["statuscode"] for _ in bad]
            assert codes == [400, 400, 400, 200, 400, 400]

            def broken(*args: Any) -> None:
                raise KeyError("injected handler failure")

            monkeypatch.setattr(sim, "_handle_calibration", broken)
            conn.sendall(b'{"category": "calibration", "request": "abort"}\n')
            assert reader.readline() == b""  # dropped
            reader.close()
        wait_for(lambda: bool(caplog.records), 2, "the log line")
    assert thread_errors == []
    (record,) = caplog.records
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "KeyError" in record.getMessage()


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "0"],
        ["--rate", "5000"],
        ["--port", "99999"],
        ["--heartbeat-ms", "0"],
        ["--port", "IN_USE"],
        ["--replay", "MISSING"],
        ["--replay", "BAD"],
    ],  # fmt: skip
)
def test_cli_simulate_tracker_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys, argv: list[str]
) -> None:
    from gazelab.app.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t_ms": 0, "x": 1, "y": 2}\nnot json\n')
    with socket.create_server(("127.0.0.1", 0)) as taken:
        subst = {
            "IN_USE": str(taken.getsockname()[1]),
            "MISSING": str(tmp_path / "nope.jsonl"),
            "BAD": str(bad),
        }
        try:
            code = main(["simulate-tracker", *[subst.get(a, a) for a in argv]])
        except SystemExit as exc:  # a range the argument parser itself checks
            code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("gazelab simulate-tracker: error: ")


# -- a server in another process that hangs, then ignores the request restoring push --------
def test_push_mode_ignored_after_a_reconnect_is_asked_again_and_frames_come_back() -> None:
    """The server hangs (no replies, no frames, requests ignored) long enough for the client
    to reconnect; the request restoring push mode on the new connection is ignored. The
    client used to stay "connected" on heartbeat replies with no frames and no further gap;
    now it asks for push mode again, the frames come back, and the quiet time is a gap."""
    from tests.tracker_server_proc import start_server, stop_server, tell

    proc, port = start_server("eyetribe")
    tracker = EyeTribeTracker("127.0.0.1", port, timeout_s=1.0, frame_timeout_s=0.5)
    try:
        tracker.connect()
        tracker.start()
        wait_for(lambda: len(tracker.drain()) > 0 and tracker.stats.frames >= 30, 5.0, "frames")
        tell(proc, "deaf")
        t_deaf = time.monotonic()
        wait_for(lambda: tracker.stats.reconnects >= 1, 5.0, "a reconnect while the server hangs")
        tell(proc, "sulk")  # answers heartbeats again, still ignores the push request
        time.sleep(0.6)
        assert tracker.connected
        tell(proc, "hear")
        t_hear = time.monotonic()
        tracker.drain()
        got = 0
        t_end = time.monotonic() + 6.0
        while got < 30 and time.monotonic() < t_end:
            time.sleep(0.05)
            got += len(tracker.drain())
        assert got >= 30, f"{got} frames after the server answered again ({tracker.stats})"
        assert tracker.connected
    finally:
        tracker.close()
        stop_server(proc)
    gaps = sorted(tracker.gaps, key=lambda g: g.start_s)
    assert gaps[0].start_s <= t_deaf + 0.3  # from the last message, not from the fault
    assert max(g.end_s for g in gaps) >= t_hear  # the quiet time after the hang is a gap too
    assert any("no frames" in g.reason for g in gaps), [g.reason for g in gaps]
    for a, b in itertools.pairwise(gaps):
        assert b.start_s >= a.end_s - 1e-6, "gaps overlap"
