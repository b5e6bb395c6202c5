"""The annotation window driven for real: keys, timers, screenshots (pytest-qt, offscreen)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.annotation.protocol import Phase
from gazelab.annotation.session import SessionConfig
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402

from gazelab.app.annotate import AnnotationWindow  # noqa: E402

W, H, SQUARE = 640, 360, 300
GREY = (128, 128, 128)


def small_settings(**tracker: object) -> Settings:
    s = Settings()
    geo = DisplayGeometry.from_diagonal(27.0, (W, H), 700.0)
    return dataclasses.replace(
        s,
        display=geo,
        stimulus=dataclasses.replace(s.stimulus, square_px=SQUARE),
        protocol=dataclasses.replace(s.protocol, cross_size_px=40, cross_width_px=6, seed=5),
        tracker=dataclasses.replace(s.tracker, kind="sim", rate_hz=120, **tracker),
    )


def rgb(img: QImage, x: int, y: int) -> tuple[int, int, int]:
    c = img.pixelColor(x, y)
    return (c.red(), c.green(), c.blue())


def grab(win: AnnotationWindow, path: Path) -> QImage:
    pix = win.grab()
    assert pix.save(str(path)), path
    img = QImage(str(path))
    assert (img.width(), img.height()) == (W, H)
    return img


def make_window(qtbot, tmp_path: Path, **kw) -> AnnotationWindow:  # type: ignore[no-untyped-def]
    cfg = SessionConfig(tmp_path / "study.sqlite", "P01", "synthetic:8:3", small_settings())
    win = AnnotationWindow(
        cfg, calibration_dwell_s=0.05, validation_dwell_s=0.9, microphone=False, **kw
    )
    qtbot.addWidget(win)
    win.resize(W, H)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_full_session_with_simulator_and_keys(qtbot, out_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = make_window(qtbot, tmp_path)
    grab(win, out_dir / "00_start.png")
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "calibration_result", timeout=10_000)
    img = grab(win, out_dir / "01_calibration_result.png")
    assert win.calibration is not None and win.calibration.result
    qtbot.keyClick(win, Qt.Key.Key_Space)  # validate, then its result, accepted: trials
    qtbot.waitUntil(lambda: win.mode == "validation_result", timeout=15_000)
    if not win.ctl.may_start():
        qtbot.keyClick(win, Qt.Key.Key_O)  # a simulated observer above the limits: override
    else:
        qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "trials", timeout=15_000)
    assert len(win.validation) == 9 and np.nanmedian(win.validation) < 2.0

    # each phase change the timer makes: the phase it leaves, the ``until`` it is entered
    # by (given: the deadline, entered ahead by the measured latency), that deadline, and
    # the protocol's clock then; and what is left unwritten of the gaze samples when a
    # key's advance returns (the ended trial's: none)
    ticks: list[tuple[Phase, float | None, float | None, float]] = []
    tick = win.ctl.tick

    def recorded_tick(until: float | None = None) -> list:  # type: ignore[type-arg]
        p = win.protocol
        leaving, deadline, now = p.phase, p.next_deadline(), p.clock()
        changes = tick(until)
        if changes:
            ticks.append((leaving, until, deadline, now))
        return changes

    win.ctl.tick = recorded_tick  # type: ignore[method-assign]
    unwritten: list[int] = []
    advance = win.advance

    def recorded_advance() -> bool:
        step = advance()
        if step:
            unwritten.append(win.ctl.capture.writer.pending)
        return step

    win.advance = recorded_advance  # type: ignore[method-assign]

    order = win.session.stimulus_order
    for t in range(8):
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.BLANK1, timeout=5000)
        img = grab(win, out_dir / f"t{t}_1_blank1.png")
        arr = np.array([rgb(img, x, y) for x in range(0, W, 37) for y in range(0, H, 23)])
        assert (arr == GREY).all()  # blank: background only
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.CROSS, timeout=5000)
        img = grab(win, out_dir / f"t{t}_2_cross.png")
        assert rgb(img, W // 2, H // 2) == (0, 0, 0)  # cross at the centre
        assert rgb(img, W // 2 + 15, H // 2) == (0, 0, 0)  # its arms
        assert rgb(img, W // 2 + 15, H // 2 + 15) == GREY  # not a filled square
        assert rgb(img, 10, 10) == GREY and rgb(img, W - 10, H - 10) == GREY
        qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
        qtbot.keyClick(win, Qt.Key.Key_Space)  # no label yet: advance does nothing
        assert win.protocol.phase is Phase.IMAGE and win.protocol.trial_index == t
        img = grab(win, out_dir / f"t{t}_3_image.png")
        # the 256×256 face scaled into the 300 px square, centred
        face = win.images.image(order[t])
        x0, y0 = (W - SQUARE) // 2, (H - SQUARE) // 2
        inside = np.array(
            [rgb(img, x0 + 20 + 26 * i, y0 + 20 + 26 * j)[0] for i in range(10) for j in range(10)]
        )
        expect = np.array(
            [
                face[int((20 + 26 * j) * 256 / 300), int((20 + 26 * i) * 256 / 300)]
                for i in range(10)
                for j in range(10)
            ]
        )
        assert np.abs(inside.astype(int) - expect.astype(int)).mean() < 12
        assert rgb(img, x0 - 5, H // 2) == GREY and rgb(img, x0 + SQUARE + 5, H // 2) == GREY
        label = CLASSES[win.images.labels[order[t]]]
        wrong = CLASSES[(CLASSES.index(label) + 1) % 8]
        qtbot.keyClick(win, str(CLASSES.index(wrong)))
        qtbot.keyClick(win, str(CLASSES.index(label)))  # corrected before advancing
        assert win.message == label
        qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.mode == "done", timeout=5000)
    grab(win, out_dir / "99_done.png")
    sid = win.session.id
    win.finish()

    store = SessionStore(tmp_path / "study.sqlite")
    final = store.final_labels(sid)
    assert len(final) == 8 and [final[i] for i in range(8)] == [
        CLASSES[win.images.labels[i]] for i in order
    ]
    kinds = [e["kind"] for e in store.events(sid)]
    for phase in ("blank1", "cross", "blank2", "image"):
        assert kinds.count(phase) == 8, phase
    flips = [e for e in store.events(sid) if e["kind"] == "flip"]
    assert len(flips) == 32
    trials = store.trials(sid)
    errors = [tr["onset_error_ms"] for tr in trials]
    # an image's onset is aimed at its deadline (entered ahead by its measured latency,
    # at most LEAD_MAX_S): it may come a little early, never more than that
    lead_ms = AnnotationWindow.LEAD_MAX_S * 1000
    assert all(e is not None and -lead_ms <= e < 200 for e in errors), errors
    by_phase: dict[str, list[float]] = {}
    for f in flips:
        by_phase.setdefault(f["payload"]["phase"], []).append(f["payload"]["error_ms"])
    assert min(by_phase["blank1"]) >= 0  # the key's blank is never ahead of the key
    for phase in (Phase.CROSS, Phase.BLANK2, Phase.IMAGE):  # the timed ones: led
        lat = win._latency[phase]
        assert len(lat) == 8 and all(0 < x < 0.2 for x in lat), (phase, lat)
        assert win._lead_s(phase) == min(AnnotationWindow.LEAD_MAX_S, float(np.median(lat)))
        assert min(by_phase[phase.value]) >= -lead_ms
    # entered ahead only once LEAD_MIN_SAMPLES latencies are known (never on a first cold
    # paint's), then by the deadline itself and at most LEAD_MAX_S before it (a timer
    # that fired late enters it after it); the phase's records stay at its schedule
    following = {Phase.BLANK1: Phase.CROSS, Phase.CROSS: Phase.BLANK2, Phase.BLANK2: Phase.IMAGE}
    for phase in (Phase.CROSS, Phase.BLANK2, Phase.IMAGE):
        calls = [c for c in ticks if following[c[0]] is phase]
        assert len(calls) == 8, (phase, calls)
        assert all(c[1] is None for c in calls[: AnnotationWindow.LEAD_MIN_SAMPLES]), calls
        led = [c for c in calls if c[1] is not None]
        assert led and all(until == deadline for _, until, deadline, _ in led), (phase, led)
        assert all(d - now <= AnnotationWindow.LEAD_MAX_S for _, _, d, now in led), (phase, led)  # type: ignore[operator]
    for e in store.events(sid):
        if e["kind"] in ("blank1", "cross", "blank2", "image"):
            assert e["local_s"] >= e["payload"]["scheduled_s"], e
    assert unwritten == [0] * 8  # each ended trial's samples on disk when its key returns
    samples = store.samples(sid)
    phases = set(samples["phase"].tolist())
    assert {"blank1", "cross", "blank2", "image"} <= phases
    assert len(samples["x"]) > 8 * 1.2 * 120 * 0.8  # ≥ 80 % of the timed-phase samples alone
    cals = store.calibrations(sid)
    assert [c["kind"] for c in cals] == ["calibration", "validation"]
    assert len(list(out_dir.glob("*.png"))) == 8 * 3 + 3


def test_voice_answer_through_the_window(qtbot, out_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess

    from gazelab.annotation.speech import PocketSphinxRecognizer, read_wav

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    win = make_window(qtbot, tmp_path, recognizer=PocketSphinxRecognizer, skip_calibration=True)
    win.voice = True
    win.begin()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)

    def say(word: str) -> None:
        wav = out_dir / f"{word}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), word], check=True)
        audio, rate = read_wav(wav)
        from gazelab.annotation.speech import to_16k

        a = to_16k(audio, rate)
        noise = np.random.default_rng(0).normal(0, 30, 48000).astype(np.int16)
        win.feed_audio(np.concatenate([noise[:16000], a + noise[: a.size], noise[:16000]]))

    say("banana")
    qtbot.waitUntil(lambda: win.message == "not understood, please repeat", timeout=5000)
    assert win.protocol.current_label is None
    say("surprised")
    qtbot.waitUntil(lambda: win.protocol.current_label == "surprise", timeout=5000)
    grab(win, out_dir / "voice_label.png")
    sid = win.session.id
    win.finish()
    store = SessionStore(tmp_path / "study.sqlite")
    speech = [e["payload"] for e in store.events(sid) if e["kind"] == "speech"]
    assert [s["label"] for s in speech] == [None, "surprise"]
    audio = store.audio(sid)
    assert len(audio) == 1 and Path(audio[0]["path"]).exists()
    assert store.labels(sid)[0].source == "voice"


def test_setup_dialog_validates_and_builds_the_config(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.setup_dialog import SetupDialog

    dlg = SetupDialog(SessionConfig(tmp_path / "s.sqlite", ""))
    qtbot.addWidget(dlg)
    dlg.ok_button.click()  # empty pseudonym: stays open, says why
    assert dlg.config is None and "participant" in dlg.errors.text()
    dlg.participant.setText("P02")
    dlg.images.setText(f"folder:{tmp_path / 'nowhere'}")
    dlg.resolution.setText("1920x1080")
    dlg.ok_button.click()
    assert dlg.config is None and "nowhere" in dlg.errors.text()
    dlg.images.setText("synthetic:4:2")
    dlg.tracker.setCurrentText("eyetribe:10.0.0.5:6556")
    dlg.voice.setCurrentText("keys")
    dlg.diagonal.setValue(24.0)
    dlg.distance.setValue(60.0)
    dlg.ok_button.click()  # OK runs the pre-flight first: nothing answers at 10.0.0.5
    assert dlg.config is None and "10.0.0.5" in dlg.errors.text()
    assert not dlg.ok_button.isEnabled()
    dlg.override.setChecked(True)  # start despite it: recorded with the session
    dlg.ok_button.click()
    cfg = dlg.config
    assert cfg is not None and any("10.0.0.5" in p for p in cfg.preflight_override)
    assert cfg is not None and cfg.participant == "P02"
    s = cfg.settings
    assert (s.tracker.kind, s.tracker.host, s.tracker.port) == ("eyetribe", "10.0.0.5", 6556)
    assert s.display.resolution_px == (1920, 1080) and s.display.distance_mm == pytest.approx(600)
    assert np.hypot(s.display.width_mm, s.display.height_mm) == pytest.approx(24 * 25.4)


def test_annotate_cli_user_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main

    assert main(["annotate", "--no-dialog", "--store", str(tmp_path / "s.sqlite"),
                 "--participant", "P 1"]) == 2  # fmt: skip
    assert "letters, digits" in capsys.readouterr().err
    assert main(["annotate", "--no-dialog", "--participant", "P1", "--tracker", "tobii"]) == 2
    assert "eyetribe" in capsys.readouterr().err
    assert main(["annotate", "--no-dialog", "--participant", "P1", "--resolution", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def _pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    rows = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return rows[:, : img.width() * 4].copy()


def test_a_phase_change_repaints_what_it_changes_and_the_screen_stays_whole(
    qtbot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The raster path repaints only what a trial's phase change alters (the cross's
    square, the image's rectangle; a pixel between blanks), so the onset's paint is short;
    what the platform shows (its backing store, not a fresh render) equals a full render
    of the window at every phase of three trials, the cross cleared by the blank after
    it and the image by the next trial's blank."""
    from gazelab.app.annotate import Autopilot

    win = make_window(qtbot, tmp_path, skip_calibration=True, autopilot=Autopilot(view_s=0.6))
    rects: list[object] = []
    real = win.repaint

    def spy(*a: object) -> None:
        rects.append(a[0] if a else None)
        real(*a)

    win.repaint = spy  # type: ignore[method-assign]
    qtbot.wait(200)  # the platform's backing store made (grabWindow is null before)
    win.begin()
    for t in range(3):
        for phase in (Phase.BLANK1, Phase.CROSS, Phase.BLANK2, Phase.IMAGE):
            qtbot.waitUntil(
                lambda t=t, phase=phase: (win.protocol.trial_index, win.protocol.phase)
                == (t, phase),
                timeout=5000,
            )
            shown = _pixels(win.screen().grabWindow(win.winId()).toImage())
            assert np.array_equal(shown, _pixels(win.grab().toImage())), (t, phase)
    regions = [list(r) for r in rects if r is not None]  # type: ignore[call-overload]
    sizes = {(r.width(), r.height()) for rs in regions for r in rs}
    assert (SQUARE, SQUARE) in sizes  # the image's rectangle only
    assert any(w * h < 80 * 80 for w, h in sizes)  # the cross's square
    # the blank after a labelled image clears the image and the word's box under it, not
    # the screen's whole width (the rectangle around both)
    areas = [sum(r.width() * r.height() for r in rs) for rs in regions]
    assert max(areas) < SQUARE * SQUARE + 200 * 40, max(areas)
    assert all(r.width() < W // 2 for rs in regions for r in rs)
    win.finish()


def test_windowed_size_fits_the_screen_and_text_stays_readable(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--windowed on a 1366x768 laptop: the window (the 2560x1440 default screen shrunk,
    aspect kept) fits the free area with its frame (it opened at 1600x900, cut off); drawn
    at that scale, the validation's numbers are 11 px, not 8."""
    from gazelab.app.annotate_screens import MIN_TEXT_PX, font_px, windowed_size

    w, h = windowed_size((2560, 1440), (1366, 728))
    assert (w, h) == (1223, 688) and w + 16 <= 1366 and h + 40 <= 728
    assert abs(w / h - 16 / 9) < 0.01
    assert windowed_size((2560, 1440), (1920, 1040)) == (1600, 900)  # as before
    assert windowed_size((1024, 768), None) == (1024, 768)
    # a window showing a 1280x720 session screen at 640x360: scale 0.5
    win = make_window(qtbot, tmp_path)
    assert win.scale() == pytest.approx(1.0)
    assert font_px(7, 0.5) == MIN_TEXT_PX == 11 and font_px(7, win.scale()) == 14
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainter

    from gazelab.app import annotate_screens as sc

    img = QImage(W, H, QImage.Format.Format_RGB32)
    img.fill(0)
    p = QPainter(img)
    sc.text(win, p, "0.03°", QRectF(0, 0, W, H), sc.TEXT, 7)
    assert p.font().pixelSize() == 14
    p.end()
    win.resize(W // 2, H // 2)  # the session screen shown at half size
    qtbot.waitUntil(lambda: win.scale() == pytest.approx(0.5), timeout=2000)
    p = QPainter(img)
    sc.text(win, p, "0.03°", QRectF(0, 0, W, H), sc.TEXT, 7)
    assert p.font().pixelSize() == 11  # was 8
    p.end()
    win.finish()


@pytest.mark.slow
def test_windowed_session_on_a_real_1366x768_screen(tmp_path: Path) -> None:
    """gazelab annotate --windowed in Xvfb + openbox at 1366x768: the whole window, frame
    included, is on the screen (1600x900 went off its right and bottom edges)."""
    import subprocess
    import sys
    import time

    from tests.xserver import x_screen

    log = tmp_path / "annotate.log"
    with x_screen(1366, 768, tmp_path, "annotate_windowed_1366x768") as x:
        cmd = [sys.executable, "-m", "gazelab.app.cli", "annotate", "--store",
               str(tmp_path / "s.sqlite"), "--participant", "P01", "--images",
               "synthetic:2:1:64", "--tracker", "sim", "--voice", "keys", "--no-dialog",
               "--windowed", "--screen-in", "15.6"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=x.env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        try:
            wid = x.wait_window("^gazelab — P01$", proc=proc)  # not "… experimenter view — P01"
            time.sleep(1.0)
            x.shot("start", tmp_path)
            gx, gy, gw, gh = x.geometry(wid)
            # the window and its title bar (~20 px) fit the screen; where openbox puts it is
            # its own business (and xdotool counts the frame twice in the position)
            assert gx >= 0 and gy >= 0 and gw <= 1366 and gh + 20 <= 768, (gx, gy, gw, gh)
            assert gw >= 1000  # as large as the screen lets it be
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_failed_blank_paint_still_writes_the_ended_trials_samples(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The key's blank paints before the ended trial's gaze samples are written; a paint
    that raises does not leave them in memory (a crash right after would lose them)."""
    win = make_window(qtbot, tmp_path, skip_calibration=True)
    win.begin()
    qtbot.waitUntil(lambda: win.protocol.phase is Phase.IMAGE, timeout=5000)
    qtbot.wait(100)  # samples of the image phase taken
    qtbot.keyClick(win, "0")
    win.ctl.capture.poll()  # the last samples taken, not yet written
    assert win.ctl.capture.writer.pending > 0

    def broken() -> None:
        raise RuntimeError("paint failed")

    win.present = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="paint failed"):
        win.advance()
    assert win.protocol.phase is Phase.BLANK1 and win.protocol.trial_index == 1
    assert win.ctl.capture.writer.pending == 0
    sid = win.session.id
    store = SessionStore(tmp_path / "study.sqlite")
    trial0 = store.samples(sid)["trial_index"] == 0
    assert int(trial0.sum()) > 0
    del win.present
    win.finish()
