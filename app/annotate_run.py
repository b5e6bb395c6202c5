"""Running the annotation window as ``gazelab annotate`` does: full screen (or a window),
the simulated participant of demos and tests, and the experimenter's view."""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QTimer

from gazelab.annotation.screen import ScreenInfo, ScreenMemory
from gazelab.annotation.session import SessionConfig, on_screen, screen_event
from gazelab.app.annotate import AnnotationWindow, Autopilot
from gazelab.app.annotate_screens import windowed_size
from gazelab.app.setup_dialog import qt_screen_info


def run_annotation(
    config: SessionConfig,
    *,
    windowed: bool = False,
    autopilot: Autopilot | None = None,
    skip_calibration: bool = False,
    auto_start: bool = False,
    experimenter_view: bool = False,
) -> int:
    """Open the window and run the Qt event loop; returns the session id.

    ``experimenter_view``: also open :class:`~gazelab.app.experimenter.ExperimenterView`,
    on the second screen when there is one."""
    from gazelab.app.qt import application

    app = application()
    info = None if windowed else qt_screen_info()  # the full screen is the stimulus
    if info is not None and config.resume is None and config.screen is None:
        # no set-up dialog decided it: the screen's own geometry, as the dialog would
        config = on_screen(config, info, remembered_mm=ScreenMemory().size_mm(info.key))
        if config.screen is not None and config.screen.needs_size:
            print(f"gazelab annotate: {config.screen.notes[-1]} (--screen-in, or the set-up"
                  " dialog, which remembers it for this screen)", file=sys.stderr)  # fmt: skip
    screen = info.resolution_px if info is not None else None
    win = AnnotationWindow(config, autopilot=autopilot, skip_calibration=skip_calibration,
                           actual_screen_px=screen)  # fmt: skip
    record_setup(win, config, info)
    for note in win.ctl.notes:
        print(f"gazelab annotate: {note}", file=sys.stderr)
    view = open_experimenter_view(win, app) if experimenter_view else None
    if windowed:  # the whole window on the screen it opens on
        geo = app.primaryScreen().availableGeometry() if app.primaryScreen() else None
        free = (geo.width(), geo.height()) if geo is not None else None
        win.resize(*windowed_size(win.settings.display.resolution_px, free))
        win.show()
    else:
        win.showFullScreen()
    if auto_start or autopilot is not None:
        QTimer.singleShot(100, win.begin)
    if autopilot is not None:
        win.destroyed.connect(app.quit)

        def check_done() -> None:
            if win.mode == "done":
                win.finish()
                app.quit()

        t = QTimer(win)
        t.timeout.connect(check_done)
        t.start(100)
    app.exec()
    del view
    return int(win.session.id)


def record_setup(win: AnnotationWindow, config: SessionConfig, info: ScreenInfo | None) -> None:
    """Store how the set-up went as events of the session: the screen geometry recorded
    and where its size came from (``screen``), and pre-flight problems the operator chose
    to start despite (``preflight_override``)."""
    if config.resume is None:
        win.ctl.event("screen", **screen_event(config, info))
    if config.preflight_override:
        win.ctl.event("preflight_override", problems=list(config.preflight_override))


def open_experimenter_view(win: AnnotationWindow, app: Any) -> Any:
    """Show the experimenter's view of ``win``'s session (on the second screen when there
    is one); it closes with the participant's window, so Esc ends the whole app."""
    from gazelab.app.experimenter import ExperimenterView

    view = ExperimenterView(win.ctl, window=win)
    # ``destroyed`` never comes for a closed (not deleted) window: without this the view
    # stayed open after Esc and the app never ended
    win.closed.connect(view.close)
    screens = app.screens()
    if len(screens) > 1:  # the participant's screen is the primary one
        view.move(screens[1].availableGeometry().topLeft())
    view.show()
    return view
