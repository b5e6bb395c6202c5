"""The standalone simulators ``gazelab simulate-tracker --protocol`` runs: an Eye Tribe
server, a GazePoint Open Gaze server and an LSL gaze stream, each driven by the synthetic
observer (or a replay), registered with :func:`~gazelab.gaze.trackers.registry.register_server`.
"""

from __future__ import annotations

from typing import Any

from gazelab.gaze.trackers.registry import ServeRequest, register_server


@register_server("eyetribe", "Eye Tribe TCP JSON server (port 6555)")
def serve_eyetribe(request: ServeRequest) -> tuple[Any, str]:
    from gazelab.gaze.trackers.protocol import DEFAULT_PORT
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator

    sim = EyeTribeSimulator(
        request.host, DEFAULT_PORT if request.port is None else request.port,
        rate_hz=request.rate_hz, source=request.source, seed=request.seed,
        heartbeat_ms=request.heartbeat_ms,
    ).start()  # fmt: skip
    return sim, (f"Eye Tribe simulator on {request.host}:{sim.port} at {request.rate_hz} Hz "
                 f"({request.what})")  # fmt: skip


@register_server("gazepoint", "GazePoint Open Gaze API server (XML over TCP, port 4242)")
def serve_gazepoint(request: ServeRequest) -> tuple[Any, str]:
    from gazelab.gaze.trackers.gazepoint import DEFAULT_PORT
    from gazelab.gaze.trackers.gazepoint_sim import GazePointSimulator

    sim = GazePointSimulator(
        request.host, DEFAULT_PORT if request.port is None else request.port,
        rate_hz=request.rate_hz, source=request.source, seed=request.seed,
    ).start()  # fmt: skip
    return sim, (f"GazePoint Open Gaze simulator on {request.host}:{sim.port} at "
                 f"{request.rate_hz} Hz ({request.what})")  # fmt: skip


@register_server("lsl", "a gaze stream on the Lab Streaming Layer")
def serve_lsl(request: ServeRequest) -> tuple[Any, str]:
    from gazelab.gaze.trackers.lsl_sim import LSLGazeOutlet

    sim = LSLGazeOutlet(request.source, rate_hz=request.rate_hz, seed=request.seed,
                        wait_for_consumer=False).start()  # fmt: skip
    return sim, (f"LSL gaze stream {sim.name!r} (type Gaze) at {request.rate_hz} Hz "
                 f"({request.what}); annotate with --tracker lsl:name={sim.name}")  # fmt: skip
