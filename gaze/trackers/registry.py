"""Trackers registered by name (``eyetribe``, ``sim``, ``gazepoint``, ``lsl``, ``mouse``,
``none`` ...) in :data:`TRACKERS`, a :class:`~gazelab.plugins.Registry`.

Each tracker module registers how to open itself with :func:`register_tracker`; the
registry imports every module of :mod:`gazelab.gaze.trackers`, and every module an
installed package names under the ``gazelab.trackers`` entry point, the first time it is
read, so adding a tracker is one new module (plus its test) and nothing else:
``gazelab annotate --tracker``, the settings' ``tracker.kind`` choices, the set-up
dialog, ``gazelab demo --tracker`` (simulators) and the help text all read
:data:`TRACKERS` (``docs/extending.md``).

A tracker is named on the command line as ``KIND[:ARGS]``: ``eyetribe:HOST:PORT``,
``gazepoint:HOST``, ``lsl:type=Gaze``, ``sim``. What ARGS mean is the tracker's
own business (:attr:`TrackerKind.args`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gazelab.errors import GazelabError
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.base import Tracker
from gazelab.plugins import Registry


class TrackerSpecError(GazelabError, ValueError):
    """A tracker named on the command line or in settings is unknown or malformed."""


@dataclass(frozen=True)
class TrackerRequest:
    """Everything an opener may use: where the tracker is, the screen it maps to, the
    session's clock, and (for the mouse tracker) the pointer."""

    kind: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: the tracker's own default port
    stream: str = ""  # LSL: which stream, e.g. "type=Gaze"
    rate_hz: int = 60
    screen_px: tuple[int, int] = (2560, 1440)
    geometry: DisplayGeometry = field(default_factory=DisplayGeometry.from_diagonal)
    seed: int = 0
    clock: Callable[[], float] = time.monotonic
    mouse_position: Callable[[], tuple[float, float] | None] | None = None


@dataclass
class OpenTracker:
    """A connected tracker and whatever must be stopped with it (a simulator)."""

    tracker: Tracker
    simulator: Any = None
    observer: Any = None

    def close(self) -> None:
        try:
            self.tracker.stop()
        finally:
            self.tracker.close()
            if self.simulator is not None:
                self.simulator.stop()


Opener = Callable[[TrackerRequest], OpenTracker]


ARG_FORMS = {"address": "{}[:HOST[:PORT]]", "stream": "{}[:type=Gaze|name=NAME]", "none": "{}"}
"""How ``KIND:ARGS`` is written for each argument form (:attr:`TrackerKind.args`)."""


@dataclass(frozen=True)
class TrackerKind:
    """A registered tracker: how to open it, how it is named, and what it is.

    ``args``: what ``KIND:ARGS`` carries — ``"address"`` (``HOST[:PORT]``),
    ``"stream"`` (an LSL stream query) or ``"none"``. ``eye_tracker``: it measures the
    eyes, so calibration, validation, drift checks and data quality mean something (false
    for ``mouse`` and ``none``). ``simulated``: a simulator in-process; ``simulates``: the
    tracker whose protocol that simulator speaks (``sim`` simulates ``eyetribe``), which
    makes it a ``gazelab demo --tracker`` choice.
    """

    name: str
    open: Opener
    args: str
    help: str
    simulated: bool = False
    manufacturer: str = "gazelab"
    model: str = ""
    eye_tracker: bool = True
    simulates: str = ""

    @property
    def form(self) -> str:
        """How it is named on the command line: ``eyetribe[:HOST[:PORT]]``."""
        return ARG_FORMS[self.args].format(self.name)


UNAVAILABLE: dict[str, str] = {}
"""Tracker modules that failed to import, with the reason (shown when one is asked for)."""

TRACKERS: Registry[TrackerKind] = Registry(
    "tracker",
    "gazelab.gaze.trackers",
    group="gazelab.trackers",
    form=lambda k: k.form,
    error=TrackerSpecError,
    failures=UNAVAILABLE,
)
"""Every tracker by name: this package's modules and the ``gazelab.trackers`` entry points
of installed packages, imported on first use."""


def register_tracker(
    name: str,
    help: str,
    *,
    args: str = "none",
    simulated: bool = False,
    manufacturer: str = "gazelab",
    model: str = "",
    eye_tracker: bool = True,
    simulates: str = "",
) -> Callable[[Opener], Opener]:
    """Register ``open(request) -> OpenTracker`` as the tracker ``name`` (traits: see
    :class:`TrackerKind`); ``manufacturer`` and ``model`` go into exported sidecars (BIDS
    ``Manufacturer``, ``ManufacturersModelName``)."""
    if args not in ARG_FORMS:
        raise ValueError(f"tracker {name!r}: args must be address, stream or none")

    def add(fn: Opener) -> Opener:
        kind = TrackerKind(
            name, fn, args, help, simulated, manufacturer, model or name, eye_tracker, simulates
        )
        TRACKERS.add(name, kind)  # the same module imported twice is fine, two openers not
        return fn

    return add


def trackers() -> dict[str, TrackerKind]:
    """Every tracker by name, after importing every tracker module once (a module that
    fails to import is listed in :data:`UNAVAILABLE`)."""
    return dict(TRACKERS.items())


def tracker_names() -> tuple[str, ...]:
    """Registered tracker names (settings choices, CLI help)."""
    return TRACKERS.names()


def tracker_usage() -> str:
    """One line for ``--help``: every tracker with the arguments it takes."""
    return TRACKERS.usage()


def is_eye_tracker(kind: str) -> bool:
    """Whether the tracker ``kind`` measures the eyes (calibration, validation, drift checks
    and gaze quality apply): its ``eye_tracker`` trait; an unknown kind counts as one."""
    known = TRACKERS.find(kind)
    return known is None or known.eye_tracker


def simulators() -> dict[str, TrackerKind]:
    """The in-process simulators by the tracker they simulate (``eyetribe`` -> ``sim``):
    the ``gazelab demo --tracker`` choices."""
    return {k.simulates: k for k in TRACKERS.values() if k.simulated and k.simulates}


@dataclass(frozen=True)
class TrackerSpec:
    """``KIND[:ARGS]`` taken apart."""

    kind: str
    host: str | None = None
    port: int | None = None
    stream: str | None = None


def parse_tracker_spec(spec: str) -> TrackerSpec:
    """``eyetribe:10.0.0.2:6555`` / ``gazepoint:HOST`` / ``lsl:name=Tobii`` / ``sim``."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in TRACKERS:
        raise TrackerSpecError(f"tracker {spec!r}: use one of {tracker_usage()}{TRACKERS.broken()}")
    k = TRACKERS[kind]
    if not rest:
        return TrackerSpec(kind)
    if k.args == "none":
        raise TrackerSpecError(f"tracker {spec!r}: {kind} takes no arguments")
    if k.args == "stream":
        return TrackerSpec(kind, stream=rest)
    host, _, port = rest.partition(":")
    if port:
        try:
            number = int(port)
        except ValueError:
            raise TrackerSpecError(f"tracker {spec!r}: the port must be a number") from None
        if not 1 <= number <= 65535:
            raise TrackerSpecError(f"tracker {spec!r}: the port must be 1..65535")
        return TrackerSpec(kind, host=host or None, port=number)
    return TrackerSpec(kind, host=host or None)


def open_tracker_request(request: TrackerRequest) -> OpenTracker:
    """Open and connect the tracker ``request.kind`` names."""
    if request.kind not in TRACKERS:
        raise TrackerSpecError(
            f"tracker {request.kind!r}: use one of {tracker_usage()}{TRACKERS.broken()}"
        )
    return TRACKERS[request.kind].open(request)


@dataclass(frozen=True)
class ServeRequest:
    """What ``gazelab simulate-tracker`` asks of a standalone simulator: where to listen
    (``port`` None: the protocol's own), its rate, and the gaze it plays (``source``: a
    replay, or ``None`` for the synthetic observer)."""

    host: str = "127.0.0.1"
    port: int | None = None
    rate_hz: int = 60
    heartbeat_ms: int = 250
    source: Any = None
    seed: int = 0
    what: str = "synthetic observer"  # what drives the gaze, for the line printed


Serve = Callable[[ServeRequest], tuple[Any, str]]
"""``serve(request) -> (started simulator with serve_forever(), one line saying where)``."""


@dataclass(frozen=True)
class SimulatorServer:
    """A standalone simulator of the tracker protocol ``name`` (``eyetribe``): a
    ``gazelab simulate-tracker --protocol`` choice."""

    name: str
    serve: Serve
    help: str


SERVERS: Registry[SimulatorServer] = Registry(
    "simulator protocol", "gazelab.gaze.trackers", group="gazelab.trackers"
)
"""Standalone tracker simulators by the protocol they serve; registered, like the trackers,
by the modules of this package and of ``gazelab.trackers`` entry points."""


def register_server(name: str, help: str) -> Callable[[Serve], Serve]:
    """Register ``serve(request) -> (simulator, where)`` as the simulator of protocol ``name``."""

    def add(fn: Serve) -> Serve:
        SERVERS.add(name, SimulatorServer(name, fn, help))
        return fn

    return add
