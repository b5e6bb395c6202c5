"""How phases reach the screen (``stimulus.flip``): the raster path offscreen, the OpenGL
surface on a real X screen (Xvfb + openbox, Mesa's llvmpipe), the clock each onset is
recorded with, the one-line refusal of a flip that cannot be had."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.session import SessionConfig
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings, SettingsError

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from gazelab.app.annotate import AnnotationWindow  # noqa: E402
from gazelab.app.annotate_flip import FlipUnavailable, choose_surface  # noqa: E402


def flip_settings(flip: str, res: tuple[int, int] = (640, 360), square: int = 300) -> Settings:
    s = Settings()
    return dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(27.0, res, 700.0),
        stimulus=dataclasses.replace(s.stimulus, square_px=square, flip=flip),
        tracker=dataclasses.replace(s.tracker, kind="none"),
    )


def test_the_setting_takes_four_values_and_names_them_when_wrong() -> None:
    assert Settings().stimulus.flip == "auto"
    assert Settings.from_toml('[stimulus]\nflip = "vsync"\n').stimulus.flip == "vsync"
    with pytest.raises(
        SettingsError, match="stimulus.flip = 'sometimes'.*'auto', 'vsync', 'swap', 'paint'"
    ):
        Settings.from_toml('[stimulus]\nflip = "sometimes"\n')


def test_offscreen_auto_is_the_paint_path_and_onsets_say_so(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = SessionConfig(tmp_path / "t.sqlite", "P01", "synthetic:2:3", flip_settings("auto"))
    win = AnnotationWindow(cfg, microphone=False, skip_calibration=True)
    qtbot.addWidget(win)
    assert (win.surface.clock, win.surface.vsync, win._gl) == ("paint", False, None)
    assert "offscreen" in win.surface.why  # why auto took the raster path
    win.resize(640, 360)
    win.show()
    qtbot.waitExposed(win)
    win.begin()
    qtbot.waitUntil(lambda: win.protocol.trial_index == 0 and win.protocol.phase.value == "image",
                    timeout=5000)  # fmt: skip
    events = win.store.events(win.session.id)
    win.finish()
    flips = [e["payload"] for e in events if e["kind"] == "flip"]
    assert [f["phase"] for f in flips] == ["blank1", "cross", "blank2", "image"]
    assert {f["clock"] for f in flips} == {"paint"}
    (surface,) = (e["payload"] for e in events if e["kind"] == "display_surface")
    assert surface["asked"] == "auto" and surface["clock"] == "paint" and not surface["vsync"]


@pytest.mark.parametrize("flip", ["vsync", "swap"])
def test_an_opengl_flip_offscreen_is_one_line_and_writes_nothing(
    qtbot, tmp_path: Path, flip: str
) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "t.sqlite"
    cfg = SessionConfig(store, "P01", "synthetic:2:3", flip_settings(flip))
    with pytest.raises(FlipUnavailable) as err:
        AnnotationWindow(cfg, microphone=False, skip_calibration=True)
    words = str(err.value)
    assert "\n" not in words
    assert f"stimulus.flip = {flip!r} cannot be had here" in words and "'paint'" in words
    assert not store.exists()  # refused before the session opened
    assert choose_surface("paint").clock == "paint"


def test_a_frame_drawn_ahead_is_the_frame_its_phase_shows(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What the OpenGL surface draws before a deadline (the coming phase) is, pixel for
    pixel, what the window shows once the phase has come; and its key says so."""
    from PySide6.QtGui import QImage, QPainter

    from gazelab.annotation.protocol import LabelAnswer, Phase

    cfg = SessionConfig(tmp_path / "t.sqlite", "P01", "synthetic:2:3", flip_settings("paint"))
    win = AnnotationWindow(cfg, microphone=False, skip_calibration=True)
    qtbot.addWidget(win)
    win.resize(640, 360)
    win.show()
    qtbot.waitExposed(win)

    def drawn(coming: Phase | None = None) -> QImage:
        img = QImage(win.size(), QImage.Format.Format_ARGB32_Premultiplied)
        p = QPainter(img)
        win.paint_screen(p, coming)
        p.end()
        return img

    win.begin()
    ahead: dict[Phase, tuple[QImage, tuple[object, ...]]] = {}
    for now, coming in ((Phase.BLANK1, Phase.CROSS), (Phase.CROSS, Phase.BLANK2),
                        (Phase.BLANK2, Phase.IMAGE)):  # fmt: skip
        qtbot.waitUntil(lambda now=now: win.protocol.phase is now, timeout=5000)
        win.message = "anger"  # a word from before: a new image clears it
        ahead[coming] = (drawn(coming), win.frame_key(coming))
        qtbot.waitUntil(lambda coming=coming: win.protocol.phase is coming, timeout=5000)
        image, key = ahead[coming]
        assert key == win.frame_key(), coming
        assert image == drawn(), coming
    # the blank after the image (which comes with the advance key), drawn while the image
    # is on screen with its recognised word
    win.give_label(LabelAnswer("happy", source="key", text="3"))
    assert win.message == "happy"
    blank, key = drawn(Phase.BLANK1), win.frame_key(Phase.BLANK1)
    assert win.advance() and win.protocol.phase is Phase.BLANK1 and win.protocol.trial_index == 1
    assert key == win.frame_key() and blank == drawn()
    assert ahead[Phase.CROSS][0] != ahead[Phase.BLANK2][0]  # (the frames do differ)
    assert ahead[Phase.IMAGE][0] != ahead[Phase.BLANK2][0]
    win.finish()


# -- the OpenGL surface on a real X screen -------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import dataclasses, json, sys, time
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from gazelab.annotation.protocol import Phase
    from gazelab.annotation.session import SessionConfig
    from gazelab.annotation.store import SessionStore
    from gazelab.app.annotate import AnnotationWindow, Autopilot
    from gazelab.app.annotate_flip import FlipUnavailable, probe_gl
    from tests.test_stimulus_flip import flip_settings

    out, shot, trials = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    app = QApplication(["flip"])
    renderer, vsync, problem = probe_gl()
    if not renderer:
        out.write_text(json.dumps({"skip": problem}))
        sys.exit(0)
    refused = ""
    if not vsync:  # the one line a 'vsync' session gets here
        try:
            AnnotationWindow(SessionConfig(out.parent / "v.sqlite", "P01", "synthetic:1:3",
                                           flip_settings("vsync", (1920, 1080), 800)))
        except FlipUnavailable as exc:
            refused = str(exc)
    s = flip_settings("swap", (1920, 1080), 800)
    s = dataclasses.replace(s, protocol=dataclasses.replace(
        s.protocol, blank1_ms=100.0, cross_ms=50.0, blank2_ms=100.0))
    cfg = SessionConfig(out.parent / "s.sqlite", "P01", f"synthetic:{trials}:3", s)
    win = AnnotationWindow(cfg, autopilot=Autopilot(view_s=0.4), skip_calibration=True,
                           microphone=False)
    win.showFullScreen()
    shots = []

    def look():
        if win.mode == "trials" and win.protocol.phase is Phase.IMAGE and not shots:
            shots.append(app.primaryScreen().grabWindow(0).save(shot))

    t = QTimer(); t.timeout.connect(look); t.start(50)
    d = QTimer(); d.timeout.connect(lambda: app.quit() if win.mode == "done" else None)
    d.start(50)
    QTimer.singleShot(300, win.begin)
    QTimer.singleShot(30000, app.quit)
    app.exec()
    sid, size = win.session.id, [win.width(), win.height()]
    frames, ahead = (win._gl.frames, win._gl.drawn_ahead) if win._gl else (0, 0)
    choice = win.surface
    win.finish()
    events = SessionStore(cfg.store).events(sid)
    out.write_text(json.dumps({
        "renderer": renderer, "vsync": vsync, "refused": refused, "clock": choice.clock,
        "frames": frames, "ahead": ahead, "size": size, "shot": bool(shots and shots[0]),
        "flips": [e["payload"] for e in events if e["kind"] == "flip"],
        "surface": [e["payload"] for e in events if e["kind"] == "display_surface"],
    }))
    app.shutdown()
    """
)


def test_the_opengl_surface_on_a_real_x_screen(tmp_path: Path) -> None:
    """Xvfb + openbox at 1920x1080: a session drawn through OpenGL (``swap``: Xvfb has no
    refresh, so no swap control), each onset taken at the swap; the image phase on the
    screen is the whole square, centred. Skips where no OpenGL context can be made."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb openbox)")
    from PySide6.QtGui import QImage

    from tests.xserver import x_screen

    out, shot, trials = tmp_path / "out.json", tmp_path / "image_phase.png", 3
    with x_screen(1920, 1080, tmp_path, "stimulus_flip_1920x1080") as x:
        subprocess.run([sys.executable, "-c", CHILD, str(out), str(shot), str(trials)],
                       env=x.env, cwd=Path(__file__).parent.parent, timeout=120, check=True)  # fmt: skip
    got = json.loads(out.read_text())
    if "skip" in got:
        pytest.skip(f"no OpenGL context on Xvfb: {got['skip']}")
    x.shots.mkdir(parents=True, exist_ok=True)  # a copy to look at
    shutil.copy(shot, x.shots / "stimulus_flip_image_phase.png")
    assert got["clock"] == "flip" and got["size"] == [1920, 1080]
    assert [f["phase"] for f in got["flips"]] == ["blank1", "cross", "blank2", "image"] * trials
    assert {f["clock"] for f in got["flips"]} == {"flip"}
    assert got["frames"] >= 4 * trials  # every onset was a swapped frame
    # cross, blank2, image drawn before their deadline, blank1 while the image is shown
    assert 2 * trials <= got["ahead"] <= 4 * trials
    assert got["surface"][0]["clock"] == "flip" and got["surface"][0]["renderer"] == got["renderer"]
    if not got["vsync"]:
        assert "stimulus.flip = 'vsync' cannot be had here" in got["refused"]
        assert "\n" not in got["refused"]
    # the image phase as the screen shows it: the 800 px square whole, centred, on grey
    assert got["shot"]
    img = QImage(str(shot)).convertToFormat(QImage.Format.Format_RGB888)
    assert (img.width(), img.height()) == (1920, 1080)
    ptr = img.constBits()
    a = np.frombuffer(ptr, np.uint8, img.bytesPerLine() * img.height())
    a = a.reshape(img.height(), img.bytesPerLine())[:, : 1920 * 3].reshape(1080, 1920, 3)
    off = np.abs(a.astype(int) - 128).max(axis=2) > 6  # not the grey surround
    ys, xs = np.nonzero(off)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    assert (x1 - x0, y1 - y0) == (800, 800), (x0, x1, y0, y1)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (960, 540)


def test_a_surface_that_fails_after_the_session_opened_stops_the_voice_and_says_why(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The probe found OpenGL but the window's own context fails: the voice child (and its
    microphone) stops with the window, and the session records why it ended."""
    from gazelab.annotation.store import SessionStore
    from gazelab.app import annotate, annotate_voice
    from gazelab.app.annotate_flip import SurfaceChoice
    from gazelab.tests.test_voice_worker import LoudIsHappy

    def no_context(*_: object) -> None:
        raise FlipUnavailable("no OpenGL context for the stimulus window")

    workers: list[object] = []
    real = annotate_voice.VoiceWorker

    def keep(*a: object, **k: object) -> object:
        workers.append(real(*a, **k))  # type: ignore[arg-type]
        return workers[-1]

    monkeypatch.setattr(annotate, "choose_surface", lambda flip: SurfaceChoice(flip, "flip"))
    monkeypatch.setattr(annotate, "StimulusSurface", no_context)
    monkeypatch.setattr(annotate_voice, "VoiceWorker", keep)
    store = tmp_path / "t.sqlite"
    cfg = SessionConfig(store, "P01", "synthetic:2:3", flip_settings("swap"))
    with pytest.raises(FlipUnavailable):
        AnnotationWindow(cfg, recognizer=LoudIsHappy, microphone=False, skip_calibration=True)
    (worker,) = workers
    assert not worker.process.is_alive()  # type: ignore[attr-defined]
    with SessionStore(store) as st:
        (session,) = st.sessions()
        (failed,) = (e["payload"] for e in st.events(session.id) if e["kind"] == "window_failed")
    assert failed["error"] == "FlipUnavailable: no OpenGL context for the stimulus window"
