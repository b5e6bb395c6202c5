"""Pre-flight: images, tracker, microphone and screen checked before start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gazelab.annotation.preflight import (
    check_microphone,
    check_screen,
    check_tracker,
    preflight,
    require,
)
from gazelab.annotation.session import SessionConfig, SessionSetupError
from gazelab.annotation.speech import SpeechError
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings, TrackerSettings, VoiceSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _faces(root: Path) -> Path:
    from gazelab.models.synthetic import synthetic_faces, write_folder

    write_folder(synthetic_faces(4, size=64, seed=2), root)
    return root


def _config(tmp_path: Path, images: str, settings: Settings) -> SessionConfig:
    return SessionConfig(tmp_path / "s.sqlite", "P01", images, settings)


def test_preflight_catches_a_corrupt_image(tmp_path):
    folder = _faces(tmp_path / "faces")
    bad = sorted(folder.rglob("*.png"))[2]
    bad.write_bytes(bad.read_bytes()[:80])
    s = Settings(tracker=TrackerSettings(kind="none"))
    result = preflight(_config(tmp_path, f"folder:{folder}", s), skip=("microphone",))
    (problem,) = result.problems
    assert problem.startswith("images: 1 of the session's 4 images") and bad.name in problem
    assert "tracker none: no eye tracker" in result.notes[0]
    with pytest.raises(SessionSetupError, match="pre-flight failed"):
        require(result)


def test_preflight_catches_an_unreachable_tracker(tmp_path):
    port = _free_port()  # closed: nothing listens there
    s = Settings(tracker=TrackerSettings(kind="eyetribe", port=port))
    check = check_tracker(s, read_s=0.2)
    (problem,) = check.problems
    assert problem.startswith(f"tracker eyetribe (127.0.0.1:{port}) unreachable")
    assert "Connection refused" in problem
    result = preflight(_config(tmp_path, "synthetic:2:0", s), skip=("microphone",))
    assert result.problems == check.problems


def test_simulated_tracker_streams_at_its_nominal_rate():
    s = Settings(tracker=TrackerSettings(kind="sim", rate_hz=60))
    check = check_tracker(s, read_s=0.5)
    assert check.problems == ()
    assert check.rate_hz == pytest.approx(60.0, rel=0.2)
    assert check.n_samples >= 8  # 30 nominal; a loaded machine delays the simulator


def test_rate_mismatch_and_silence_are_problems(monkeypatch):
    import gazelab.annotation.preflight as pf
    from gazelab.gaze.trackers.base import GazeSample
    from gazelab.gaze.trackers.registry import OpenTracker

    class Fake:
        def __init__(self, rate: float, n: int) -> None:
            self.batch = [GazeSample(i / rate * 1000, i / rate, 1.0, 1.0) for i in range(n)]
            self.closed = False

        def start(self) -> None: ...
        def stop(self) -> None: ...
        def close(self) -> None:
            self.closed = True

        def drain(self):
            out, self.batch = self.batch, []
            return out

    fake = Fake(30.0, 16)  # a 30 Hz tracker where the settings say 60 Hz
    monkeypatch.setattr(pf, "open_tracker", lambda s, clock: OpenTracker(fake))  # type: ignore[arg-type]
    s = Settings(tracker=TrackerSettings(kind="eyetribe", rate_hz=60))
    check = check_tracker(s, read_s=0.05)
    assert check.rate_hz == pytest.approx(30.0) and check.n_samples == 16 and fake.closed
    assert check.problems == (
        "tracker eyetribe streams at 30 Hz but tracker.rate_hz is 60; set the tracker"
        " (or the settings) to the same rate",
    )
    fake = Fake(60.0, 0)
    check = check_tracker(s, read_s=0.05)
    assert "connected but sent 0 samples in 0.1 s" in check.problems[0]


def test_preflight_catches_a_missing_microphone(tmp_path):
    s = Settings(voice=VoiceSettings(backend="default"))
    # a device that does not exist: sounddevice refuses it, as with no input device at all
    check = check_microphone(s, read_s=0.05, device="gazelab-no-such-microphone")
    (problem,) = check.problems
    assert problem.startswith("microphone: cannot open the microphone")

    def broken(**_kw):
        raise SpeechError("no audio system (PortAudio library not found); use --voice keys")

    check = check_microphone(s, level=broken)
    assert check.problems == (
        "microphone: no audio system (PortAudio library not found); use --voice keys",
    )
    assert (
        check_microphone(s, level=lambda **_kw: (-30.0, 0))
        .problems[0]
        .startswith("microphone: opened but delivered no audio")
    )
    ok = check_microphone(s, level=lambda **_kw: (-31.5, 4800))
    assert ok.problems == () and ok.level_dbfs == -31.5
    assert check_microphone(Settings()).problems == ()  # keys: no microphone needed


def test_screen_resolution_and_size_against_settings():
    g = DisplayGeometry.from_diagonal(24.0, (1920, 1080), 650.0)
    s = Settings(display=g)
    assert check_screen(s, (1920, 1080), (g.width_mm, g.height_mm)) == []
    (res,) = check_screen(s, (2560, 1440))
    assert "2560x1440 px but the settings say 1920x1080" in res
    (size,) = check_screen(s, (1920, 1080), (345.0, 194.0))  # a 15.6" laptop panel
    assert '(15.6") but the settings say' in size and '(24.0")' in size
    assert check_screen(s, (1920, 1080), (0.0, 0.0)) == []  # size not reported
