"""The Qt-free session controller: a whole session from Python, no Qt imported."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gazelab import CLASSES
from gazelab.annotation.controller import AnnotationSession
from gazelab.annotation.protocol import LabelAnswer, Phase, ProtocolError
from gazelab.annotation.session import SessionConfig
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.settings import Settings

W, H, SQUARE = 800, 600, 400


def small_settings(kind: str = "sim") -> Settings:
    s = Settings()
    return dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(24.0, (W, H), 650.0),
        stimulus=dataclasses.replace(s.stimulus, square_px=SQUARE),
        protocol=dataclasses.replace(s.protocol, blank1_ms=50, cross_ms=50, blank2_ms=50),
        tracker=dataclasses.replace(s.tracker, kind=kind, rate_hz=120),
    )


SCRIPT = """
import dataclasses, sys
from pathlib import Path
from gazelab.annotation.simulated import Stimulus, run_simulated_session
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
from gazelab.gaze.trackers.simulator import EyeTribeSimulator, SyntheticObserver
from gazelab.models.synthetic import synthetic_faces
from gazelab.settings import Settings

s = Settings()
s = dataclasses.replace(
    s, display=DisplayGeometry.from_diagonal(24.0, (800, 600), 650.0),
    stimulus=dataclasses.replace(s.stimulus, square_px=400),
    protocol=dataclasses.replace(s.protocol, blank1_ms=50, cross_ms=50, blank2_ms=50,
                                 validate_every_n_trials=2))
faces = synthetic_faces(3, size=64, seed=4)
stimuli = [Stimulus(i, (64, 64), int(l), r)
           for i, l, r in zip(faces.ids, faces.labels, faces.regions)]
obs = SyntheticObserver((800, 600), seed=3)
with SessionStore(Path(sys.argv[1]), create=True) as store, \\
        EyeTribeSimulator(port=0, rate_hz=120, screen_px=(800, 600), source=obs) as sim:
    rec = run_simulated_session(store, stimuli, EyeTribeTracker(port=sim.port),
                                participant="P01", settings=s, observer=obs,
                                view_s=(0.3, 0.4), label_error=0.0,
                                validation_dwell_s=0.8, image_source="synthetic:3:4:64")
    print(rec.id, len(store.final_labels(rec.id)),
          [c["kind"] for c in store.calibrations(rec.id)])
    print(s.display.px_to_deg(float(sum(obs._offset ** 2) ** 0.5)))
print("PySide6" in sys.modules, "PySide6.QtCore" in sys.modules)
"""


# slow tier: quick: test_controller_step_by_step_with_the_simulator, and the GUI's full session
@pytest.mark.slow
def test_a_whole_simulated_session_runs_without_qt(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(store)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    first, offset, second = out.stdout.strip().splitlines()[-3:]
    assert second == "False False"  # no Qt was imported by the whole run
    sid, n_labels, kinds = first.split(" ", 2)
    assert n_labels == "3"
    # calibration, the validation before the trials, and the periodic one after trial 2
    assert kinds == "['calibration', 'validation', 'validation']"
    with SessionStore(store) as st:
        val = st.calibrations(int(sid))[1]
        assert len(val["points"]) == 9
        errors = sorted(pt[2] for pt in val["points"])  # (x, y, accuracy_deg, ...)
        # the simulated eyes look at each target with their systematic offset (median)
        assert errors[4] == pytest.approx(float(offset), abs=0.25)


def test_controller_step_by_step_with_the_simulator(tmp_path: Path) -> None:
    cfg = SessionConfig(tmp_path / "s.sqlite", "P02", "synthetic:2:1:64", small_settings())
    s = AnnotationSession(cfg)
    try:
        assert s.store.sessions()[0].id == s.session_id
        cal = s.calibrate(dwell_s=0.05)
        assert cal.result and len(cal.points) == 9
        out = s.validate(dwell_s=0.8, settle_s=0.4)
        assert len(out.errors_deg) == 9 and sorted(out.errors_deg)[4] < 0.5
        if not out.passed:  # a blink on a target: the thresholds block the start ...
            with pytest.raises(ProtocolError, match="did not pass"):
                s.start_trials()
            s.override()  # ... until overridden (recorded)
        s.start_trials()
        assert s.protocol.phase is Phase.BLANK1
        assert not s.advance()  # nothing on screen to advance from
        import time

        while s.protocol.phase is not Phase.IMAGE:
            s.tick()
            s.poll()
            time.sleep(0.005)
        iid = s.protocol.image_id
        assert iid is not None and s.advance() == ""  # no label yet: refused
        assert s.give_label(LabelAnswer(CLASSES[s.images.labels[iid]]))
        assert s.advance() == "next" and s.protocol.trials_done == 1
    finally:
        s.finish()
    with SessionStore(cfg.store) as st:
        assert st.final_labels(s.session_id) == {0: CLASSES[s.images.labels[iid]]}
        assert st.lease_holder(s.session_id) is None  # released
        assert st.sample_count(s.session_id) > 0


def test_a_tracker_that_cannot_connect_leaves_no_session(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = small_settings("eyetribe")
    settings = dataclasses.replace(
        settings, tracker=dataclasses.replace(settings.tracker, port=port)
    )
    cfg = SessionConfig(tmp_path / "s.sqlite", "P03", "synthetic:2:1:64", settings)
    with pytest.raises(Exception, match=str(port)):
        AnnotationSession(cfg)
    assert not cfg.store.exists()  # no empty store left behind
    with SessionStore(cfg.store, create=True) as st:  # an existing store keeps no session
        assert st.sessions() == []
    with pytest.raises(Exception, match=str(port)):
        AnnotationSession(cfg)
    with SessionStore(cfg.store) as st:
        assert st.sessions() == []


def test_the_headless_runner_resumes_where_it_stopped(tmp_path: Path) -> None:
    from gazelab.annotation.simulated import Stimulus, run_simulated_session
    from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator, SyntheticObserver
    from gazelab.models.synthetic import synthetic_faces

    faces = synthetic_faces(4, size=64, seed=2)
    stimuli = [Stimulus(i, (64, 64), int(lab), r)
               for i, lab, r in zip(faces.ids, faces.labels, faces.regions, strict=True)]  # fmt: skip
    obs = SyntheticObserver((W, H), seed=1)
    kw = dict(participant="P04", settings=small_settings(), observer=obs, view_s=(0.2, 0.3),
              label_error=0.0, validate=False, image_source="synthetic:4:2:64")  # fmt: skip
    with (
        SessionStore(tmp_path / "s.sqlite", create=True) as store,
        EyeTribeSimulator(port=0, rate_hz=120, screen_px=(W, H), source=obs) as sim,
    ):
        rec = run_simulated_session(
            store, stimuli, EyeTribeTracker(port=sim.port), stop_after=2, **kw
        )
        assert sorted(store.final_labels(rec.id)) == [0, 1]
        again = run_simulated_session(
            store, stimuli, EyeTribeTracker(port=sim.port), resume=rec.id, **kw
        )
        assert again.id == rec.id and sorted(store.final_labels(rec.id)) == [0, 1, 2, 3]
        resumed = [e for e in store.events(rec.id) if e["kind"] == "session_resume"]
        assert [e["trial_index"] for e in resumed] == [2]
