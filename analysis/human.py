"""Human fixations and heatmaps of a recorded session (docs/algorithms.md).

Reads the image-phase samples of each trial from the store, detects fixations
with the method and thresholds of :class:`~gazelab.settings.FixationSettings`,
maps them into the stimulus frame and builds the span-limited Gaussian heatmap.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.store import SessionStore
from gazelab.gaze.clock_segments import split_by_clock
from gazelab.gaze.fixations import FixationTable, add_frames, detect_fixations
from gazelab.gaze.geometry import StimulusLayout, StimulusPlacement
from gazelab.gaze.heatmaps import HeatmapKernel, fixation_heatmap
from gazelab.settings import Settings


@dataclass(frozen=True)
class TrialGaze:
    """One trial's fixations (with stimulus/image frames) and its stimulus-frame heatmap
    (built on first access: analyses in image pixels never pay for the 1200×1200 frame)."""

    trial_index: int
    image_id: str
    fixations: FixationTable
    n_samples: int
    fixation_samples: NDArray[np.float64]  # (K, 2) screen px of the valid samples in fixations
    layout: StimulusLayout
    kernel: HeatmapKernel  # stimulus-frame px
    duration_weighting: bool = False
    image_onset_ms: float = 0.0  # tracker time of the first image-phase sample (replay, TTFF)
    gaze_samples: NDArray[np.float64] | None = None
    """``(V, 3)``: every valid image-phase sample as (ms from the image onset on the trial's
    one timeline, x, y screen px), for scanpath replay; kept only when asked for
    (:func:`trial_gaze` ``keep_samples``)."""
    placement: StimulusPlacement | None = None
    """Where the image really was on screen (:mod:`gazelab.analysis.placement`); the image
    frame follows it. ``None``: the centred square of ``layout``."""

    @cached_property
    def heatmap(self) -> NDArray[np.float64]:
        """The heatmap (docs/algorithms.md#heatmaps) in the stimulus frame
        (:meth:`stimulus_shape`: the square, or the image's rectangle on screen)."""
        return self.heatmap_in("stimulus")

    @property
    def free_rect(self) -> bool:
        """Whether the image was where a recording says (an imported rectangle), not in
        the centred square of ``layout``."""
        return self.placement is not None and self.placement.square_px is None

    def stimulus_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the stimulus frame, screen px: the centred square
        ``(square_px, square_px)``, or for an imported rectangle its own size rounded to
        whole pixels (origin at its top-left corner)."""
        if self.free_rect:
            assert self.placement is not None
            _, _, w, h = self.placement.rect_px
            return (max(1, round(h)), max(1, round(w)))
        return (self.layout.square_px, self.layout.square_px)

    def heatmap_in(self, frame: str = "stimulus", source: str = "events") -> NDArray[np.float64]:
        """The heatmap (docs/algorithms.md#heatmaps) of this trial: the one builder for every frame
        and point source.

        ``frame`` is ``"stimulus"`` (screen px: the square, ``(square_px, square_px)``, or
        an imported image's rectangle on screen, :meth:`stimulus_shape`) or ``"image"``
        (original image pixels, the kernel scaled with the image). With
        ``duration_weighting`` each fixation event is weighted by its duration; with
        ``source="samples"`` every sample in a fixation is a point, so time already
        weights it.
        """
        if frame == "stimulus":
            shape, kernel = self.stimulus_shape(), self.kernel
        elif frame == "image":
            shape = self.layout.image_shape
            kernel = self.image_kernel()
        else:
            raise ValueError(f"frame must be 'image' or 'stimulus', not {frame!r}")
        if kernel.circular:
            return fixation_heatmap(
                self.points(source, frame), shape, kernel.c, kernel.radius, self.weights(source)
            )
        return kernel.heatmap(self.points(source, frame), shape, self.weights(source))

    def image_kernel(self) -> HeatmapKernel:
        """The heatmap kernel in original image pixels: the screen kernel divided by the
        image's scale in x and in y (an ellipse on non-square pixels or a stretched image)."""
        if self.placement is None:
            return self.kernel.scaled(1.0 / self.layout.scale)
        return self.kernel.for_image(self.placement)

    def weights(self, source: str = "events") -> NDArray[np.float64] | None:
        """Per-point heatmap weights: each fixation event's duration (ms) with
        ``duration_weighting`` and ``source="events"``; ``None`` (equal weights) otherwise."""
        if self.duration_weighting and source == "events":
            return np.asarray(self.fixations["duration_ms"], dtype=np.float64)
        return None

    def points(self, source: str = "events", frame: str = "image") -> NDArray[np.float64]:
        """Fixation points, ``(N, 2)``: one per fixation event (centroid) or one per valid
        sample inside a fixation (``source="samples"``), in the ``image`` or ``stimulus`` frame
        (an imported rectangle's stimulus frame: screen px from its top-left corner)."""
        if source == "events":
            screen = np.stack([self.fixations["x_px"], self.fixations["y_px"]], axis=-1)
        elif source == "samples":
            screen = self.fixation_samples
        else:
            raise ValueError(f"point source must be 'events' or 'samples', not {source!r}")
        screen = np.asarray(screen, dtype=np.float64).reshape(-1, 2)
        if frame == "image":
            if self.placement is not None:
                return self.placement.screen_to_image(screen)
            return self.layout.screen_to_image(screen)
        if frame == "stimulus":
            if self.free_rect:
                assert self.placement is not None
                x0, y0 = self.placement.rect_px[0], self.placement.rect_px[1]
                return screen - np.array([x0, y0])
            return self.layout.screen_to_stimulus(screen)
        raise ValueError(f"frame must be 'image' or 'stimulus', not {frame!r}")


def fixation_rows(first: NDArray[Any], n: NDArray[Any]) -> NDArray[np.intp]:
    """The sample rows of fixations that start at rows ``first`` and hold ``n`` samples
    each, in fixation order (a row twice where two fixations share it).

    >>> fixation_rows(np.array([2, 7]), np.array([3, 1])).tolist()
    [2, 3, 4, 7]
    """
    first = np.asarray(first, dtype=np.intp).ravel()
    n = np.asarray(n, dtype=np.intp).ravel()
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, dtype=np.intp)
    # each row: its fixation's first row plus its place within the fixation
    start_of = np.repeat(first - (np.cumsum(n) - n), n)
    return np.asarray(start_of + np.arange(total, dtype=np.intp), dtype=np.intp)


def detect_by_clock_segment(
    samples: dict[str, NDArray[Any]], method: str, geometry: Any, **params: float
) -> FixationTable:
    """:func:`~gazelab.gaze.fixations.detect_fixations` on each clock segment of a trial
    (:func:`~gazelab.gaze.clock_segments.split_by_clock`: a tracker restarted mid-trial
    turns its clock back), joined into one table: ``first_sample`` indexes ``samples``,
    onsets and offsets are on the trial's one timeline (the first segment's tracker clock)."""
    parts = []
    for first, seg in split_by_clock(samples):
        fx = detect_fixations(seg, method, geometry, **params)
        parts.append({**fx, "first_sample": fx["first_sample"] + first})
    if len(parts) <= 1:
        return parts[0] if parts else detect_fixations(samples, method, geometry, **params)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def trial_gaze(
    store: SessionStore,
    session_id: int,
    image_shapes: Mapping[str, tuple[int, int]],
    settings: Settings | None = None,
    trial_indices: Collection[int] | None = None,
    *,
    samples: Mapping[int, dict[str, NDArray[Any]]] | None = None,
    keep_samples: bool = False,
) -> list[TrialGaze]:
    """Fixations and heatmaps of every trial of a session that has image-phase samples
    (:func:`iter_trial_gaze`, as a list)."""
    return list(iter_trial_gaze(store, session_id, image_shapes, settings, trial_indices,
                                samples=samples, keep_samples=keep_samples))  # fmt: skip


def iter_trial_gaze(
    store: SessionStore,
    session_id: int,
    image_shapes: Mapping[str, tuple[int, int]],
    settings: Settings | None = None,
    trial_indices: Collection[int] | None = None,
    *,
    samples: Mapping[int, dict[str, NDArray[Any]]] | None = None,
    keep_samples: bool = False,
) -> Iterator[TrialGaze]:
    """Fixations and heatmaps of every trial of a session that has image-phase samples, one
    trial at a time in trial order.

    ``image_shapes`` maps image id -> original ``(H, W)``, to place each image in the
    stimulus square; it is looked up trial by trial, just before the trial is given (a
    mapping that decodes images on demand decodes each one as its trial comes).
    ``settings`` default to the session's own; ``trial_indices`` keeps only those trials
    (the viewer reads one image's trials at a time). ``samples``: the session's
    image-phase samples by trial as :meth:`SessionStore.samples_by_trial` gives them,
    when the caller has read them already (they are not read again); otherwise a whole
    session is read in one query and a few trials by one indexed query each.
    ``keep_samples`` fills :attr:`TrialGaze.gaze_samples`.
    """
    from gazelab.analysis.placement import SessionPlacements
    from gazelab.gaze.clock_segments import continuous_time_ms

    rec = store.session(session_id)
    s = settings or Settings.from_toml(rec.settings_toml, source=f"session {session_id}")
    kernel = HeatmapKernel.from_geometry(s.display, s.heatmap.span_deg, s.heatmap.fwhm_fraction)
    placements = SessionPlacements.read(store, session_id, s)
    square = s.stimulus.square_px
    trials = [t for t in store.trials(session_id)
              if trial_indices is None or t["trial_index"] in trial_indices]  # fmt: skip
    # A few trials (the viewer): one indexed query each; a whole session: one read.
    by_trial = samples
    if by_trial is None and (trial_indices is None or len(trials) > 8):
        by_trial = store.samples_by_trial(session_id, phase="image")
    for trial in trials:
        ti, image_id = trial["trial_index"], trial["image_id"]
        if by_trial is not None:
            table = by_trial.get(ti)
            if table is None:
                continue
        else:
            table = store.samples(session_id, trial_index=ti, phase="image")
        keep = table["phase"] == "image"
        if not keep.any():
            continue
        tab = table if keep.all() else {k: v[keep] for k, v in table.items()}
        if image_id not in image_shapes:
            raise KeyError(f"no image shape given for image id {image_id!r} of trial {ti}")
        layout = StimulusLayout(s.display.resolution_px, square, image_shapes[image_id])
        fx = detect_by_clock_segment(
            tab, s.fixations.method, s.display, **s.fixations.detector_params()
        )
        fx = add_frames(fx, layout)
        placement = placements.for_trial(ti, layout.image_shape)
        trial_kernel = kernel
        if placement.square_px is None:  # the image where it really was, not the square
            trial_kernel = HeatmapKernel.from_placement(
                placement, s.heatmap.span_deg, s.heatmap.fwhm_fraction
            )
            xy = np.stack([fx["x_px"], fx["y_px"]], axis=-1).reshape(-1, 2)
            img = placement.screen_to_image(xy)
            fx = {**fx, "x_img": img[:, 0], "y_img": img[:, 1],
                  "in_image": placement.inside_image(xy)}  # fmt: skip
        in_fix = fixation_rows(fx["first_sample"], fx["n_samples"])
        rows = in_fix[np.asarray(tab["valid"], dtype=bool)[in_fix]]
        fix_xy = np.stack([tab["x"][rows], tab["y"][rows]], axis=-1).reshape(-1, 2)
        onset = float(tab["time_ms"][0])
        replay = None
        if keep_samples:
            # the trial's one timeline (a tracker restarted mid-trial turned its clock back)
            t = continuous_time_ms(tab["time_ms"], tab["local_s"])
            ok = np.asarray(tab["valid"], dtype=bool)
            replay = np.column_stack([t[ok] - onset, tab["x"][ok], tab["y"][ok]])
            replay = replay.astype(np.float64).reshape(-1, 3)
        yield TrialGaze(ti, image_id, fx, int(len(tab["phase"])), fix_xy, layout, trial_kernel,
                        s.heatmap.duration_weighting, onset, replay, placement)  # fmt: skip
