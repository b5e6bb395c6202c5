"""``gazelab simulate-tracker``: a tracker without hardware."""

from __future__ import annotations

import argparse


def cmd_simulate_tracker(args: argparse.Namespace) -> int:
    """A tracker without hardware: the standalone simulator of ``--protocol`` (an Eye Tribe
    server, a GazePoint Open Gaze server, an LSL gaze stream, or one a plug-in registers),
    driven by the synthetic observer (or a replay file)."""
    from gazelab.gaze.trackers.registry import SERVERS, ServeRequest

    source = None
    if args.replay:
        from gazelab.gaze.trackers.simulator import ReplaySource

        source = ReplaySource(args.replay)
    request = ServeRequest(
        args.host, args.port, args.rate, args.heartbeat_ms, source, args.seed,
        f"replay of {args.replay}" if args.replay else "synthetic observer",
    )  # fmt: skip
    sim, where = SERVERS.get(args.protocol).serve(request)
    print(f"{where}; Ctrl-C stops", flush=True)
    sim.serve_forever()
    return 0
