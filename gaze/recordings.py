"""Small readers of real tracker recordings, with the tracker's own fixation events.

These are the readers the fixation benchmark and tests use to check the detectors
against each tracker's own event parser (``docs/fixations.md``): pure functions from
the file's text to numpy arrays, no pandas. They read what the evaluation needs and
nothing more; a full importer of recordings into a project is a separate matter.

- :func:`parse_eyelink_asc` — SR Research EyeLink ASC (``edf2asc`` output): samples of
  one eye and that eye's ``EFIX`` events; the pixels per degree from the ``RES`` of the
  ``END`` lines; the screen from ``GAZE_COORDS``.
- :func:`parse_tobii_tsv` — a Tobii Studio / Tobii Pro Lab tab-separated export with
  the gaze point in pixels and the fixation filter's event columns (``GazeEventType`` /
  ``Eye movement type`` and ``FixationIndex`` / ``Eye movement type index``).
- :func:`parse_gazepoint_csv` — a Gazepoint export (``all_gaze.csv``): ``BPOGX/Y``
  (fractions of the screen), ``BPOGV``, and the tracker's fixations: each ``FPOGID`` from
  its start ``FPOGS`` for its duration ``FPOGD`` (what Gazepoint Analysis exports as
  fixations), or the samples flagged ``FPOGV``.

Each returns a :class:`Recording`: ``t_ms`` (tracker clock, ms), ``x_px``, ``y_px``
(screen px, NaN where missing), ``valid`` and ``fixations``, a ``(F, 2)`` array of the
tracker's fixations as inclusive ``[onset_ms, offset_ms]`` sample times.

Examples
--------
>>> asc = "\\n".join([
...     "MSG\\t100 GAZE_COORDS 0.00 0.00 1023.00 767.00",
...     "START\\t100 \\tLEFT\\tSAMPLES\\tEVENTS",
...     "SAMPLES\\tGAZE\\tLEFT\\tRATE\\t 500.00\\tTRACKING\\tCR\\tFILTER\\t2",
...     "100\\t 500.0\\t 380.0\\t 900.0\\t...", "102\\t 501.0\\t 381.0\\t 900.0\\t...",
...     "104\\t   .\\t   .\\t    0.0\\t...", "EFIX L   100\\t102\\t4\\t 500.5\\t 380.5\\t900",
...     "END\\t106 \\tSAMPLES\\tEVENTS\\tRES\\t  35.00\\t  35.00"])
>>> r = parse_eyelink_asc(asc)
>>> r.t_ms.tolist(), r.valid.tolist(), r.fixations.tolist(), r.rate_hz, r.px_per_deg
([100.0, 102.0, 104.0], [True, True, False], [[100.0, 102.0]], 500.0, 35.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gazelab.gaze.geometry import DisplayGeometry


class RecordingFormatError(ValueError):
    """A recording's text is not in the format its reader expects (message says where)."""


@dataclass(frozen=True)
class Recording:
    """One eye's (or the averaged) gaze samples and the tracker's fixation events."""

    t_ms: NDArray[np.float64]
    x_px: NDArray[np.float64]
    y_px: NDArray[np.float64]
    valid: NDArray[np.bool_]
    fixations: NDArray[np.float64]  # (F, 2) inclusive [onset_ms, offset_ms]
    rate_hz: float
    screen_px: tuple[float, float] | None = None
    px_per_deg: float | None = None
    eye: str = ""
    source: str = ""

    def samples(self) -> dict[str, NDArray[np.generic]]:
        """The sample table :func:`~gazelab.gaze.fixations.detect_fixations` reads."""
        return {"time_ms": self.t_ms, "x": self.x_px, "y": self.y_px, "valid": self.valid}

    def in_fixation(self) -> NDArray[np.bool_]:
        """Per sample: inside one of the tracker's fixations (inclusive bounds)."""
        return in_intervals(self.t_ms, self.fixations)


def in_intervals(t: NDArray[np.float64], intervals: NDArray[np.float64]) -> NDArray[np.bool_]:
    """``(N,)`` bool: ``t`` falls in one of the inclusive ``(F, 2)`` intervals (any order).

    Overlapping intervals are allowed. Vectorised with a difference array over sorted times.
    """
    t = np.asarray(t, dtype=np.float64)
    iv = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    a = np.searchsorted(ts, iv[:, 0], side="left")
    b = np.searchsorted(ts, iv[:, 1], side="right")
    d = np.zeros(ts.size + 1, dtype=np.int64)
    np.add.at(d, a, 1)
    np.add.at(d, b, -1)
    out = np.empty(ts.size, dtype=bool)
    out[order] = np.cumsum(d[:-1]) > 0
    return out


def _text(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path) or ("\n" not in source and len(source) < 4096):
        path = Path(source)
        return path.read_text(encoding="utf-8", errors="replace"), str(path)
    return source, "<text>"


def _num(tok: str) -> float:
    try:
        return float(tok)
    except ValueError:
        return math.nan


def parse_eyelink_asc(source: str | Path, eye: str | None = None) -> Recording:
    """Samples and ``EFIX`` events of one eye of an EyeLink ASC file.

    Parameters
    ----------
    source : str or Path
        The ASC text, or the path of an ``.asc`` file.
    eye : {"L", "R", None}
        Which eye; default the first one recorded (left in a binocular file).

    Returns
    -------
    Recording
        ``t_ms`` the EyeLink clock (ms); ``x_px``, ``y_px`` gaze in the ``GAZE_COORDS``
        frame (NaN where missing, ``valid`` false there); ``fixations`` the eye's
        ``EFIX`` [start, end] times; ``rate_hz`` from the ``SAMPLES`` line;
        ``px_per_deg`` the mean of the ``END`` lines' ``RES`` (x and y), or ``None``.

    Raises
    ------
    RecordingFormatError
        No ``SAMPLES`` line, no samples, or the asked eye was not recorded.
    """
    text, name = _text(source)
    eyes: list[str] = []
    rate = math.nan
    screen: tuple[float, float] | None = None
    res: list[float] = []
    t: list[float] = []
    x: list[float] = []
    y: list[float] = []
    fix: list[tuple[float, float]] = []
    col = 0
    for line in text.splitlines():
        if not line:
            continue
        c = line[0]
        if c.isdigit():
            if not eyes:
                continue
            parts = line.split()
            if len(parts) < 3 + col:
                continue
            t.append(float(parts[0]))
            x.append(_num(parts[1 + col]))
            y.append(_num(parts[2 + col]))
        elif line.startswith("SAMPLES"):
            parts = line.split()
            eyes = [p[0] for p in parts if p in ("LEFT", "RIGHT")]
            if "RATE" in parts:
                rate = float(parts[parts.index("RATE") + 1])
            want = eye or eyes[0] if eyes else None
            if want not in eyes:
                raise RecordingFormatError(
                    f"{name}: eye {eye!r} was not recorded (eyes: {''.join(eyes)}); "
                    "choose one of them"
                )
            eye = want
            col = 3 * eyes.index(want)
        elif line.startswith("EFIX"):
            parts = line.split()
            if eye is None or parts[1] == eye:
                fix.append((float(parts[2]), float(parts[3])))
        elif line.startswith("END"):
            parts = line.split()
            if "RES" in parts:
                k = parts.index("RES")
                res += [_num(p) for p in parts[k + 1 : k + 3]]
        elif line.startswith("MSG") and "GAZE_COORDS" in line:
            parts = line.split()
            k = parts.index("GAZE_COORDS")
            w, h = (round(float(parts[k + i]) - float(parts[k + i - 2])) for i in (3, 4))
            screen = (float(w + w % 2), float(h + h % 2))  # "0 0 1023 767" or "... 1920 1080"
    if not math.isfinite(rate):
        raise RecordingFormatError(f"{name}: no SAMPLES line; is this an EyeLink ASC file?")
    if not t:
        raise RecordingFormatError(f"{name}: holds no samples; convert the EDF with samples")
    ta, xa, ya = (np.array(v, dtype=np.float64) for v in (t, x, y))
    if rate > 1000.0:  # older edf2asc writes whole ms at 2000 Hz: 8259057, 8259057, ...
        ta = _split_repeated_times(ta, 1000.0 / rate)
    good = [r for r in res if math.isfinite(r) and r > 0]
    return Recording(
        ta, xa, ya, np.isfinite(xa) & np.isfinite(ya),
        np.array(fix, dtype=np.float64).reshape(-1, 2), rate, screen,
        float(np.mean(good)) if good else None, eye or "", name,
    )  # fmt: skip


def _split_repeated_times(t: NDArray[np.float64], period_ms: float) -> NDArray[np.float64]:
    """Times repeated k times become ``t, t + period, t + 2 period, ...``."""
    if t.size < 2:
        return t
    new_run = np.r_[True, np.diff(t) != 0]
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(t.size), 0))
    return t + (np.arange(t.size) - run_start) * period_ms


def _columns(text: str, sep: str, name: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise RecordingFormatError(f"{name}: empty file")
    header = [h.strip().strip('"') for h in lines[0].split(sep)]
    rows = [ln.split(sep) for ln in lines[1:]]
    return header, rows


def _pick(header: list[str], names: tuple[str, ...], name: str) -> int:
    for n in names:
        if n in header:
            return header.index(n)
    raise RecordingFormatError(f"{name}: no column {' / '.join(names)}; is this the right export?")


def _runs_to_intervals(t: NDArray[np.float64], label: NDArray[np.int64]) -> NDArray[np.float64]:
    """[first, last] times of each run of one positive label (a fixation index)."""
    if t.size == 0:
        return np.zeros((0, 2))
    change = np.flatnonzero(np.diff(label) != 0) + 1
    starts = np.r_[0, change]
    stops = np.r_[change, t.size] - 1
    keep = label[starts] > 0
    return np.stack([t[starts[keep]], t[stops[keep]]], axis=1)


def parse_tobii_tsv(source: str | Path) -> Recording:
    """Gaze and fixation-filter events of a Tobii Studio / Pro Lab tab-separated export.

    Reads ``RecordingTimestamp`` / ``Recording timestamp`` (ms; µs when the export
    says ``[μs]``), the gaze point in pixels (``GazePointX (ADCSpx)``, ``GazePointX
    (MCSpx)``, ``Gaze point X``) and the fixation filter's events: a sample is in
    fixation *k* when its event type is ``Fixation`` and its fixation index is *k*.
    Rows of other sensors (Pro Lab's ``Sensor`` column) are dropped.
    """
    text, name = _text(source)
    header, rows = _columns(text, "\t", name)
    it = _pick(header, ("RecordingTimestamp", "Recording timestamp", "Recording timestamp [ms]",
                        "Recording timestamp [μs]"), name)  # fmt: skip
    ix = _pick(header, ("GazePointX (ADCSpx)", "GazePointX (MCSpx)", "GazePointX",
                        "Gaze point X", "Gaze point X [DACS px]"), name)  # fmt: skip
    iy = _pick(header, ("GazePointY (ADCSpx)", "GazePointY (MCSpx)", "GazePointY",
                        "Gaze point Y", "Gaze point Y [DACS px]"), name)  # fmt: skip
    ie = _pick(header, ("GazeEventType", "Eye movement type"), name)
    ii = _pick(header, ("FixationIndex", "Eye movement type index"), name)
    sensor = header.index("Sensor") if "Sensor" in header else None
    scale = 1e-3 if "μs" in header[it] else 1.0
    t, x, y, idx = [], [], [], []
    for r in rows:
        if len(r) <= max(it, ix, iy, ie, ii):
            continue
        if sensor is not None and r[sensor].strip() not in ("Eye Tracker", ""):
            continue
        tt = _num(r[it].replace(",", "."))
        if not math.isfinite(tt):
            continue
        t.append(tt * scale)
        x.append(_num(r[ix].replace(",", ".")))
        y.append(_num(r[iy].replace(",", ".")))
        k = _num(r[ii]) if r[ie].strip() == "Fixation" else math.nan
        idx.append(int(k) if math.isfinite(k) else 0)
    if not t:
        raise RecordingFormatError(f"{name}: holds no gaze samples")
    ta, xa, ya = (np.array(v, dtype=np.float64) for v in (t, x, y))
    dt = np.diff(ta)
    rate = 1000.0 / float(np.median(dt[dt > 0])) if np.any(dt > 0) else math.nan
    return Recording(
        ta, xa, ya, np.isfinite(xa) & np.isfinite(ya),
        _runs_to_intervals(ta, np.array(idx, dtype=np.int64)), rate, source=name,
    )  # fmt: skip


def _snap(t: NDArray[np.float64], intervals: NDArray[np.float64]) -> NDArray[np.float64]:
    """``intervals`` with each bound within 0.5 ms of a sample time set to that time (a
    start plus a duration, both rounded to 10 µs, misses its sample by rounding)."""
    if t.size == 0 or intervals.size == 0:
        return intervals
    order = np.sort(t)
    j = np.clip(np.searchsorted(order, intervals), 1, order.size - 1)
    near = np.where(intervals - order[j - 1] < order[j] - intervals, order[j - 1], order[j])
    return np.where(np.abs(near - intervals) <= 0.5, near, intervals)


GAZEPOINT_REFERENCES = ("fixations", "valid")
"""The two readings of a Gazepoint file's fixations (:func:`parse_gazepoint_csv`)."""


def parse_gazepoint_csv(
    source: str | Path, screen_px: tuple[int, int], reference: str = "fixations"
) -> Recording:
    """Gaze and the tracker's fixations of a Gazepoint export (``*_all_gaze.csv``).

    ``TIME`` (s, or ``TIME(...)`` headers), ``BPOGX``/``BPOGY`` (fractions of the
    screen, times ``screen_px``), ``BPOGV`` (valid), and the tracker's fixation filter,
    read one of two ways (``reference``):

    - ``"fixations"`` (default): each fixation ``FPOGID`` that was ever flagged valid
      lasts from its start ``FPOGS`` for its duration ``FPOGD`` (s; the values of its last
      valid sample) — the fixations Gazepoint Analysis exports (``*_fixations.csv``: one
      row per ``FPOGID`` with ``FPOGS`` and ``FPOGD``);
    - ``"valid"``: the samples of ``FPOGID`` while ``FPOGV`` is 1. The filter raises
      ``FPOGV`` only once a fixation has lasted a few samples (about 20 ms at 150 Hz,
      50 ms at 60 Hz), so this drops each fixation's first samples.
    """
    if reference not in GAZEPOINT_REFERENCES:
        raise ValueError(f"reference {reference!r}: choose one of {GAZEPOINT_REFERENCES}")
    text, name = _text(source)
    header, rows = _columns(text, ",", name)
    it = next((i for i, h in enumerate(header) if h.upper().startswith("TIME")), None)
    if it is None:
        raise RecordingFormatError(f"{name}: no TIME column; is this a Gazepoint export?")
    ix, iy, iv = (_pick(header, (c,), name) for c in ("BPOGX", "BPOGY", "BPOGV"))
    fid, fv = _pick(header, ("FPOGID",), name), _pick(header, ("FPOGV",), name)
    if reference == "fixations":
        if "FPOGS" not in header or "FPOGD" not in header:
            raise RecordingFormatError(
                f"{name}: no FPOGS/FPOGD columns for the exported fixations; "
                "read it with reference='valid' (FPOGID while FPOGV)"
            )
        fs, fd = header.index("FPOGS"), header.index("FPOGD")
    else:
        fs = fd = fid
    need = max(it, ix, iy, iv, fid, fv, fs, fd)
    t, x, y, v, idx = [], [], [], [], []
    span: dict[int, tuple[float, float]] = {}  # FPOGID -> (FPOGS, FPOGD) at its last valid row
    for r in rows:
        if len(r) <= need:
            continue
        tt = _num(r[it])
        if not math.isfinite(tt):
            continue
        t.append(tt * 1000.0)
        x.append(_num(r[ix]) * screen_px[0])
        y.append(_num(r[iy]) * screen_px[1])
        v.append(_num(r[iv]) == 1)
        k = _num(r[fid]) if _num(r[fv]) == 1 else math.nan
        idx.append(int(k) + 1 if math.isfinite(k) else 0)
        if reference == "fixations" and math.isfinite(k):
            span[int(k)] = (_num(r[fs]) * 1000.0, _num(r[fd]) * 1000.0)
    if not t:
        raise RecordingFormatError(f"{name}: holds no gaze samples")
    ta, xa, ya = (np.array(a, dtype=np.float64) for a in (t, x, y))
    dt = np.diff(ta)
    rate = 1000.0 / float(np.median(dt[dt > 0])) if np.any(dt > 0) else math.nan
    valid = np.array(v, dtype=bool) & np.isfinite(xa) & np.isfinite(ya)
    if reference == "fixations":
        iv_ms = np.array([(s, s + d) for s, d in span.values()
                          if math.isfinite(s) and math.isfinite(d)], dtype=np.float64)  # fmt: skip
        fixations = _snap(ta, iv_ms.reshape(-1, 2))
    else:
        fixations = _runs_to_intervals(ta, np.array(idx, dtype=np.int64))
    return Recording(
        ta, xa, ya, valid, fixations, rate, (float(screen_px[0]), float(screen_px[1])),
        source=name,
    )  # fmt: skip


def parse_tx300_tsv(
    source: str | Path, screen_px: tuple[int, int] = (1920, 1080), eye: str = "L"
) -> Recording:
    """One eye of a Tobii TX300 recording as the Tobii SDK writes it (I2MC's examples).

    ``RelTimestamp`` (ms), ``LGazePos2dx`` / ``LGazePos2dy`` (fractions of the screen,
    times ``screen_px``) and ``LValidity`` (0-1 good) for ``eye="L"``, ``R...`` for the
    right. Such files carry no events: ``fixations`` is empty.
    """
    text, name = _text(source)
    header, rows = _columns(text, "\t", name)
    if eye not in ("L", "R"):
        raise RecordingFormatError(f"{name}: eye {eye!r} must be 'L' or 'R'")
    it = _pick(header, ("RelTimestamp",), name)
    ix, iy, iv = (
        _pick(header, (f"{eye}{c}",), name) for c in ("GazePos2dx", "GazePos2dy", "Validity")
    )
    need = max(it, ix, iy, iv)
    cols = np.array([[_num(r[i]) for i in (it, ix, iy, iv)] for r in rows if len(r) > need])
    if cols.size == 0:
        raise RecordingFormatError(f"{name}: holds no gaze samples")
    t, x, y = cols[:, 0], cols[:, 1] * screen_px[0], cols[:, 2] * screen_px[1]
    valid = (cols[:, 3] <= 1) & (cols[:, 1] >= -1) & (cols[:, 2] >= -1)
    valid &= np.isfinite(x) & np.isfinite(y)
    dt = np.diff(t)
    rate = 1000.0 / float(np.median(dt[dt > 0])) if np.any(dt > 0) else math.nan
    return Recording(
        t, np.where(valid, x, np.nan), np.where(valid, y, np.nan), valid,
        np.zeros((0, 2)), rate, (float(screen_px[0]), float(screen_px[1])), None, eye, name,
    )  # fmt: skip


def geometry_for(px_per_deg: float, screen_px: tuple[float, float]) -> DisplayGeometry:
    """A :class:`DisplayGeometry` of ``screen_px`` pixels with ``px_per_deg`` pixels per
    degree at its centre (1 mm pixels; the viewing distance chosen to match)."""
    w, h = int(round(screen_px[0])), int(round(screen_px[1]))
    distance = px_per_deg / (2.0 * math.tan(math.radians(0.5)))
    return DisplayGeometry(float(w), float(h), (w, h), distance)
