"""Commands on annotation sessions: ``annotate``, ``sessions``, ``export``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gazelab.app.commands import settings_of


def cmd_annotate(args: argparse.Namespace) -> int:
    """Run (or resume) an annotation session in the full-screen window."""
    from gazelab.annotation.session import config_from_options

    images = args.images
    if args.dataset:
        images = f"{args.dataset[0]}:{args.dataset[1]}"
    config = config_from_options(
        store=args.store,
        participant=args.participant or "",
        images=images,
        tracker=args.tracker,
        voice=args.voice,
        diagonal_in=args.screen_in,
        resolution=args.resolution,
        distance_cm=args.distance_cm,
        settings=settings_of(args),
        resume=args.resume,
        order=args.order,
    )
    from gazelab.app.annotate import Autopilot, run_annotation
    from gazelab.app.qt import application

    application()
    if not args.no_dialog:
        from gazelab.app.setup_dialog import SetupDialog

        dialog = SetupDialog(config)
        if not dialog.exec() or dialog.config is None:
            print("cancelled", file=sys.stderr)
            return 1
        config = dialog.config
    else:
        config.check()
    autopilot = Autopilot(view_s=args.autopilot) if args.autopilot is not None else None
    sid = run_annotation(
        config,
        windowed=args.windowed,
        autopilot=autopilot,
        skip_calibration=args.skip_calibration,
        experimenter_view=args.experimenter_view,
    )
    print(f"session {sid} in {config.store}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gazelab.annotation.bids import export_session
    from gazelab.annotation.store import SessionStore

    with SessionStore(args.store) as store:
        ids = [args.session] if args.session is not None else [s.id for s in store.sessions()]
        if not ids:
            print(f"{args.store} holds no sessions yet: nothing exported")
        for sid in ids:
            paths = export_session(store, sid, args.out)
            print(f"session {sid}: {paths['gaze'].parent}")
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    """List a store's sessions: participant, date, progress, data quality."""
    from gazelab.annotation.sessions import list_sessions, sessions_csv, sessions_table
    from gazelab.annotation.store import SessionStore

    with SessionStore(args.store) as store:
        rows = list_sessions(store)
    print(sessions_csv(rows) if args.csv else sessions_table(rows), end="")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gazelab.app.demo import run_demo

    run_demo(Path(args.out), n_images=args.images, seed=args.seed, quick=args.quick,
             tracker=args.tracker)  # fmt: skip
    return 0
