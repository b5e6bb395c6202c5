"""Where each trial's image was on screen: the one reader of a session's placements.

An imported recording stores, per trial, an ``import_trial`` event whose
``image_rect_px`` is the image's rectangle on screen as the file gives it (EyeLink
``!V IMGLOAD``, Tobii media position and size), and in its ``import`` event the screen's
millimetres per pixel in x and in y. ``gazelab annotate`` records, at each image onset, a
``stimulus_placement`` event with the same fields for the centred square it shows.
:meth:`SessionPlacements.for_trial` turns either into a
:class:`~gazelab.gaze.geometry.StimulusPlacement`; a trial with neither (a session
recorded before placements were stored, a format that does not say where the image was)
gets the centred square of the session's settings — what ``annotate`` has always shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gazelab.errors import GazelabError
from gazelab.gaze.geometry import (
    PLACEMENT_EVENT,
    StimulusPlacement,
    pitch_problem,
    rect_problem,
)
from gazelab.gaze.quality import pixel_pitch_xy
from gazelab.settings import Settings

IMPORT_TRIAL_EVENT = "import_trial"
IMPORT_EVENT = "import"
_KINDS = (PLACEMENT_EVENT, IMPORT_TRIAL_EVENT, IMPORT_EVENT)


def _placement_events(store: Any, session_id: int) -> list[tuple[int | None, str, dict]]:
    """``(trial_index, kind, payload)`` of a session's placement events, in time order.

    Reads only those kinds when the store allows a query (an imported session holds many
    tracker events that need not be decoded); otherwise filters :meth:`events`."""
    query = getattr(store, "_query", None)
    if query is not None:
        rows = query(
            "SELECT trial_index, kind, payload FROM events WHERE session_id = ?"
            f" AND kind IN ({', '.join('?' * len(_KINDS))}) ORDER BY local_s, id",
            (session_id, *_KINDS),
        )
        return [(r[0], r[1], json.loads(r[2]) if r[2] else {}) for r in rows]
    return [(e["trial_index"], e["kind"], e["payload"]) for e in store.events(session_id)
            if e["kind"] in _KINDS]  # fmt: skip


class PlacementError(GazelabError, ValueError):
    """A trial's recorded image rectangle cannot be where the image was (zero or negative
    size, not a number, wholly off the screen, many screens wide)."""


def _number(v: Any) -> float:
    if isinstance(v, bool):
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


@dataclass(frozen=True)
class SessionPlacements:
    """The placement events of one session, by trial (:meth:`read`)."""

    settings: Settings
    by_trial: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """trial index -> the payload of its last placement event (``image_rect_px`` ...)."""
    mm_per_px: tuple[float, float] | None = None
    """The screen's mm per pixel in x and y from an ``import`` event, if any."""
    session_id: int | None = None
    """The session read (named in the error of a rectangle that cannot be)."""

    @classmethod
    def read(
        cls, store: Any, session_id: int, settings: Settings | None = None
    ) -> SessionPlacements:
        """The placements recorded in a session (settings default to the session's own)."""
        if settings is None:
            rec = store.session(session_id)
            settings = Settings.from_toml(rec.settings_toml, source=f"session {session_id}")
        by_trial: dict[int, Mapping[str, Any]] = {}
        mm: tuple[float, float] | None = None
        for ti, kind, payload in _placement_events(store, session_id):
            if not isinstance(payload, Mapping):  # not an object: records nothing
                continue
            if kind == IMPORT_EVENT:
                m = payload.get("mm_per_px")
                if isinstance(m, list) and len(m) == 2:
                    mx, my = _number(m[0]), _number(m[1])
                    if mx > 0 and my > 0 and math.isfinite(mx + my):
                        mm = (mx, my)
            elif ti is not None and payload.get("image_rect_px") is not None:
                by_trial[int(ti)] = payload  # a rectangle that is not one: for_trial refuses
        return cls(settings, by_trial, mm, session_id)

    def centred_square(self, image_shape: tuple[int, int]) -> StimulusPlacement:
        """The centred square of the session's settings (what ``annotate`` shows)."""
        s = self.settings
        return StimulusPlacement.centred_square(s.display, s.stimulus.square_px, image_shape)

    def for_trial(self, trial_index: int, image_shape: tuple[int, int]) -> StimulusPlacement:
        """Where trial ``trial_index``'s image (original ``(H, W)`` ``image_shape``) was.

        The recorded rectangle when there is one: an ``annotate`` event rebuilds its centred
        square; an imported one is taken as given. A rectangle with a position but no size
        (EyeLink ``IMGLOAD`` without width and height) is the image at its own size, its
        position the centre for ``CENTER`` and the top-left corner otherwise. Otherwise the
        centred square of the settings.

        Raises
        ------
        PlacementError
            A recorded rectangle that cannot be where the image was
            (:func:`~gazelab.gaze.geometry.rect_problem`: a size given as zero, negative or
            not a number, wholly off the screen, more than 4 screens wide or high): the
            message names the session, trial, image and values.
        """
        payload = self.by_trial.get(trial_index)
        if payload is None:
            return self.centred_square(image_shape)
        s = self.settings
        square = payload.get("square_px")
        if square is not None:  # annotate's own centred square
            screen = payload.get("screen_px") or s.display.resolution_px
            return StimulusPlacement.centred_square(
                s.display, int(square), image_shape, (int(screen[0]), int(screen[1]))
            )
        r = payload["image_rect_px"]
        where = (f"{'' if self.session_id is None else f'session {self.session_id} '}trial"
                 f" {trial_index} ({payload.get('image_id') or 'image'})")  # fmt: skip
        fix = ("correct the rectangle in the recording (IMGLOAD, media position and size,"
               " stim_* columns) or the screen size in its settings, and import it again")  # fmt: skip
        if not isinstance(r, Mapping):
            raise PlacementError(f"{where}: the recorded image rectangle {r!r} is not"
                                 f" {{x, y, w, h}} px; {fix}")  # fmt: skip
        if r.get("x") is None or r.get("y") is None:  # no position recorded
            return self.centred_square(image_shape)
        x, y, w, h = (_number(r.get(k)) for k in ("x", "y", "w", "h"))
        ih, iw = image_shape
        if r.get("w") is None or r.get("h") is None:  # a position without a size
            w, h = float(iw), float(ih)
            if (payload.get("variables") or {}).get("imgload") == "CENTER":
                x, y = x - w / 2.0, y - h / 2.0
        d = s.display
        why = rect_problem((x, y, w, h), (int(d.resolution_px[0]), int(d.resolution_px[1])))
        if why is not None:
            raise PlacementError(
                f"{where}: the recorded image rectangle x={r.get('x')!r} y={r.get('y')!r}"
                f" w={r.get('w')!r} h={r.get('h')!r} px {why}; {fix}"
            )
        mm = self.mm_per_px or pixel_pitch_xy(d)
        bad_pitch = pitch_problem(list(mm))
        if bad_pitch is not None:
            raise PlacementError(
                f"{where}: the screen's pixel size {mm[0]:g} x {mm[1]:g} mm (its width and"
                f" height in mm over its resolution in px) {bad_pitch}; import the recording"
                " again with the screen's real size (--screen-mm W H)"
            )
        return StimulusPlacement((x, y, w, h), (int(ih), int(iw)), mm, float(d.distance_mm),
                                 (int(d.resolution_px[0]), int(d.resolution_px[1])))  # fmt: skip


def trial_placement(
    store: Any,
    session_id: int,
    trial_index: int,
    image_shape: tuple[int, int],
    settings: Settings | None = None,
) -> StimulusPlacement:
    """Where one trial's image was on screen (:meth:`SessionPlacements.for_trial`)."""
    return SessionPlacements.read(store, session_id, settings).for_trial(trial_index, image_shape)
