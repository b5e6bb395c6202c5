"""``gazelab simulate-tracker``: a tracker without hardware."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_simulate_tracker(args: argparse.Namespace) -> int:
    """A tracker without hardware: an Eye Tribe server, a GazePoint Open Gaze server, or an
    LSL gaze stream, each driven by the synthetic observer (or a replay file)."""
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator, ReplaySource

    source = ReplaySource(args.replay) if args.replay else None
    what = f"replay of {args.replay}" if args.replay else "synthetic observer"
    sim: Any
    if args.protocol == "gazepoint":
        from gazelab.gaze.trackers.gazepoint import DEFAULT_PORT
        from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator

        sim = GazePointSimulator(args.host, DEFAULT_PORT if args.port is None else args.port,
                                 rate_hz=args.rate, source=source, seed=args.seed).start()  # fmt: skip
        print(f"GazePoint Open Gaze simulator on {args.host}:{sim.port} at {args.rate} Hz "
              f"({what}); Ctrl-C stops")  # fmt: skip
    elif args.protocol == "lsl":
        from gazelab.gaze.trackers.lsl_sim import LSLGazeOutlet

        sim = LSLGazeOutlet(source, rate_hz=args.rate, seed=args.seed,
                            wait_for_consumer=False).start()  # fmt: skip
        print(f"LSL gaze stream {sim.name!r} (type Gaze) at {args.rate} Hz ({what}); "
              f"annotate with --tracker lsl:name={sim.name}; Ctrl-C stops")  # fmt: skip
    else:
        from gazelab.gaze.trackers.protocol import DEFAULT_PORT

        sim = EyeTribeSimulator(
            args.host, DEFAULT_PORT if args.port is None else args.port, rate_hz=args.rate,
            source=source, seed=args.seed, heartbeat_ms=args.heartbeat_ms,
        ).start()  # fmt: skip
        print(f"Eye Tribe simulator on {args.host}:{sim.port} at {args.rate} Hz ({what}); "
              "Ctrl-C stops")  # fmt: skip
    sim.serve_forever()
    return 0
