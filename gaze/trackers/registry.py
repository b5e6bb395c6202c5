"""Trackers registered by name: ``eyetribe``, ``sim``, ``gazepoint``, ``gazepoint-sim``,
``lsl``, ``lsl-sim``, ``mouse``, ``none`` (DESIGN "one owner per concept").

Each tracker module registers how to open itself with :func:`register_tracker`; the
registry imports every module of :mod:`gazelab.gaze.trackers` the first time it is
read, so adding a tracker is one new module (plus its test) and nothing else:
``gazelab annotate --tracker``, the settings' ``tracker.kind`` choices, the set-up
dialog and the help text all read :data:`TRACKERS`.

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
from gazelab.plugins import Discovery


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


@dataclass(frozen=True)
class TrackerKind:
    """A registered tracker: how to open it and how it is named.

    ``args``: what ``KIND:ARGS`` carries — ``"address"`` (``HOST[:PORT]``),
    ``"stream"`` (an LSL stream query) or ``"none"``.
    """

    name: str
    open: Opener
    args: str
    help: str
    simulated: bool = False
    manufacturer: str = "gazelab"
    model: str = ""


TRACKERS: dict[str, TrackerKind] = {}
UNAVAILABLE: dict[str, str] = {}
"""Tracker modules that failed to import, with the reason (shown when one is asked for)."""


def register_tracker(
    name: str,
    help: str,
    *,
    args: str = "none",
    simulated: bool = False,
    manufacturer: str = "gazelab",
    model: str = "",
) -> Callable[[Opener], Opener]:
    """Register ``open(request) -> OpenTracker`` as the tracker ``name``; ``manufacturer``
    and ``model`` go into exported sidecars (BIDS ``Manufacturer``,
    ``ManufacturersModelName``)."""
    if args not in ("address", "stream", "none"):
        raise ValueError(f"tracker {name!r}: args must be address, stream or none")

    def add(fn: Opener) -> Opener:
        if name in TRACKERS and TRACKERS[name].open is not fn:
            raise ValueError(f"tracker {name!r} is registered twice")
        TRACKERS[name] = TrackerKind(name, fn, args, help, simulated, manufacturer, model or name)
        return fn

    return add


_DISCOVERY = Discovery("gazelab.gaze.trackers", failures=UNAVAILABLE)


def trackers() -> dict[str, TrackerKind]:
    """The registry, after importing every tracker module once (:class:`Discovery`: a
    module that fails to import is listed in :data:`UNAVAILABLE`)."""
    _DISCOVERY.ensure()
    return TRACKERS


def tracker_names() -> tuple[str, ...]:
    """Registered tracker names (settings choices, CLI help)."""
    return tuple(trackers())


def tracker_usage() -> str:
    """One line for ``--help``: every tracker with the arguments it takes."""
    forms = {"address": "{}[:HOST[:PORT]]", "stream": "{}[:type=Gaze|name=NAME]", "none": "{}"}
    return ", ".join(forms[k.args].format(k.name) for k in trackers().values())


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
    known = trackers()
    if kind not in known:
        broken = "".join(f"; module {m} failed to load ({why})" for m, why in UNAVAILABLE.items())
        raise TrackerSpecError(f"tracker {spec!r}: use one of {tracker_usage()}{broken}")
    k = known[kind]
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
    known = trackers()
    if request.kind not in known:
        raise TrackerSpecError(f"tracker {request.kind!r}: use one of {tracker_usage()}")
    return known[request.kind].open(request)
