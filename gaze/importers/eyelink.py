"""SR Research EyeLink ASC files (``edf2asc`` output): samples, messages, events, trials.

Read line by line:

- ``SAMPLES GAZE LEFT [RIGHT] RATE r ...``: the recorded eyes and the rate (Hz);
- sample lines ``time x y pupil [x y pupil] flags...`` (mono or binocular; a missing
  position is ``.``, extra columns such as velocity, resolution or ``INPUT`` are left);
- ``MSG time [offset] text``: every message is kept as a ``message`` event; the
  ``DISPLAY_COORDS`` / ``GAZE_COORDS`` messages give the screen; trials follow Data
  Viewer's conventions — ``TRIALID`` opens one, ``!V IMGLOAD FILL|CENTER|TOP_LEFT file
  [x y [w h]]`` names its image and where it was, ``!V TRIAL_VAR name value`` its
  variables, ``TRIAL_RESULT`` closes it — or the start/end message patterns the user
  gives (:attr:`ImportOptions.trial_start`, group 1 of the start pattern naming the image);
- ``EFIX`` / ``ESACC`` / ``EBLINK``: the tracker's own events, kept as
  ``tracker_fixation`` / ``tracker_saccade`` / ``tracker_blink``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from gazelab.gaze.importers.base import (
    Column,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    Rect,
    Trial,
    check_time,
    choose_eye,
    combine_eyes,
    compile_pattern,
    fail,
    image_id_of,
    in_intervals_mask,
    number,
    rate_of,
    read_lines,
    register_importer,
)

_INT = re.compile(r"[+-]?\d+$")
_EVENT_KIND = {"EFIX": "tracker_fixation", "ESACC": "tracker_saccade", "EBLINK": "tracker_blink"}
_EVENT_FIELDS = {
    "EFIX": ("x", "y", "pupil"),
    "ESACC": ("x0", "y0", "x1", "y1", "amplitude_deg", "peak_velocity_deg_s"),
    "EBLINK": (),
}


class _Trials:
    """Trials from Data Viewer's messages or from the user's start/end patterns."""

    def __init__(self, options: ImportOptions) -> None:
        self.start = compile_pattern(options.trial_start, "--trial-start")
        self.end = compile_pattern(options.trial_end, "--trial-end")
        self.image_var = options.image_var
        self.done: list[Trial] = []
        self.open: Trial | None = None

    def _close(self, t: float) -> None:
        if self.open is not None:
            self.open.end_ms = t
            self.done.append(self.open)
            self.open = None

    def _begin(self, t: float, label: str, image: str = "") -> None:
        self._close(t)
        self.open = Trial(t, math.inf, image, label=label)

    def message(
        self, t: float, text: str, screen: tuple[int, int] | None, path: Path, line: int
    ) -> None:
        if self.start is not None:
            m = self.start.search(text)
            if m:
                self._begin(t, text, image_id_of(m.group(1)) if m.groups() else "")
                return
            if self.end is not None and self.end.search(text):
                self._close(t)
            return
        words = text.split()
        if not words:
            return
        if words[0] == "TRIALID":
            self._begin(t, " ".join(words[1:]))
        elif words[0] == "TRIAL_RESULT":
            self._close(t)
        elif words[:2] == ["!V", "IMGLOAD"] and self.open is not None:
            self._imgload(t, words[2:], screen, path, line)
        elif words[:2] == ["!V", "TRIAL_VAR"] and len(words) >= 3 and self.open is not None:
            self.open.variables[words[2]] = " ".join(words[3:])

    def _imgload(
        self, t: float, w: list[str], screen: tuple[int, int] | None, path: Path, line: int
    ) -> None:
        assert self.open is not None
        if len(w) < 2 or w[0] not in ("FILL", "CENTER", "TOP_LEFT"):
            raise fail(path, line, "'!V IMGLOAD' needs FILL|CENTER|TOP_LEFT and a file")
        mode, file = w[0], w[1]
        nums = [number(v, path, line, "IMGLOAD position") for v in w[2:6]]
        rect: Rect | None = None
        if mode == "FILL":
            if screen is not None:
                rect = Rect(0.0, 0.0, float(screen[0]), float(screen[1]))
        elif len(nums) >= 2:
            width, height = (nums[2], nums[3]) if len(nums) >= 4 else (math.nan, math.nan)
            x, y = nums[0], nums[1]
            if mode == "CENTER":
                x, y = x - width / 2.0, y - height / 2.0
                if not math.isfinite(width):  # centre known, size not: keep the centre
                    x, y = nums[0], nums[1]
            rect = Rect(x, y, width, height)
        self.open.image_id = image_id_of(file)
        self.open.image_onset_ms = t
        self.open.rect = rect
        self.open.variables["imgload"] = mode

    def finish(self, last_t: float) -> list[Trial]:
        self._close(last_t)
        for k, trial in enumerate(self.done):
            if not trial.image_id:
                v = trial.variables
                name = v.get(self.image_var) if self.image_var else None
                name = name or v.get("image") or v.get("stimulus") or v.get("image_id")
                trial.image_id = image_id_of(name) if name else f"trial{k + 1}"
        return self.done


@register_importer("eyelink", "EyeLink ASC (edf2asc): samples, MSG trials, EFIX/ESACC/EBLINK")
def parse_eyelink(path: Path, options: ImportOptions) -> list[ImportedRecording]:
    """One :class:`ImportedRecording` of an EyeLink ASC file (see the module docstring)."""
    eyes: tuple[str, ...] = ()
    rate = math.nan
    screen: tuple[int, int] | None = None
    t, lx, ly, lp, rx, ry, rp = (Column() for _ in range(7))
    events: list[tuple[float, str, dict[str, Any]]] = []
    fixations: dict[str, list[tuple[float, float]]] = {"L": [], "R": []}
    trials = _Trials(options)
    previous = -math.inf
    eye_cols: tuple[tuple[Column, Column, Column], ...] = ()
    for n, line in read_lines(path, options.encoding):
        if not line:
            continue
        c = line[0]
        if c.isdigit():
            if not eyes:
                raise fail(path, n, "a sample before the SAMPLES line; is the file cut?")
            parts = line.split()
            need = 1 + 3 * len(eyes)
            if len(parts) < need:
                raise fail(path, n, f"sample line has {len(parts)} fields, the SAMPLES "
                           f"line ({' '.join(eyes)}) needs {need}; the line is cut")  # fmt: skip
            tt = number(parts[0], path, n, "sample time", missing=False)
            check_time(path, n, tt, previous)
            previous = tt
            t.append(tt)
            for k, (cx, cy, cp) in enumerate(eye_cols):
                cx.append(number(parts[1 + 3 * k], path, n, "gaze x"))
                cy.append(number(parts[2 + 3 * k], path, n, "gaze y"))
                cp.append(number(parts[3 + 3 * k], path, n, "pupil"))
            if len(eyes) == 1:
                other = (rx, ry, rp) if eyes[0] == "left" else (lx, ly, lp)
                for col in other:
                    col.append(math.nan)
        elif line.startswith("MSG"):
            parts = line.split(None, 2)
            if len(parts) < 2:
                raise fail(path, n, "MSG line without a time")
            tm = number(parts[1], path, n, "message time", missing=False)
            text = parts[2] if len(parts) > 2 else ""
            first, _, rest = text.partition(" ")
            if (
                _INT.match(first) and rest
            ):  # "MSG time offset text": the message is at time - offset
                tm -= float(first)
                text = rest
            events.append((tm, "message", {"text": text}))
            words = text.split()
            if words and words[0] in ("GAZE_COORDS", "DISPLAY_COORDS") and len(words) >= 5:
                box = [number(v, path, n, words[0]) for v in words[1:5]]
                w, h = round(box[2] - box[0]), round(box[3] - box[1])
                screen = (int(w + w % 2), int(h + h % 2))  # "0 0 1919 1079" or "... 1920 1080"
            trials.message(tm, text, screen, path, n)
        elif line.startswith(("EFIX", "ESACC", "EBLINK")):
            parts = line.split()
            kind = parts[0]
            if len(parts) < 5 or parts[1] not in ("L", "R"):
                raise fail(path, n, f"{kind} line has {len(parts)} fields; expected "
                           f"'{kind} L|R start end duration ...'")  # fmt: skip
            a = number(parts[2], path, n, f"{kind} start", missing=False)
            b = number(parts[3], path, n, f"{kind} end", missing=False)
            payload: dict[str, Any] = {"eye": parts[1], "onset_ms": a, "offset_ms": b}
            for name, tok in zip(_EVENT_FIELDS[kind], parts[5:], strict=False):
                v = number(tok, path, n, f"{kind} {name}")
                payload[name] = v if math.isfinite(v) else None
            events.append((a, _EVENT_KIND[kind], payload))
            if kind == "EFIX":
                fixations[parts[1]].append((a, b))
        elif line.startswith("SAMPLES"):
            words = line.split()
            found = tuple(e.lower() for e in words if e in ("LEFT", "RIGHT"))
            if not found:
                raise fail(path, n, "SAMPLES line names no eye (LEFT/RIGHT)")
            if eyes and found != eyes:
                raise fail(path, n, f"the recorded eyes change ({'+'.join(eyes)} to "
                           f"{'+'.join(found)}); split the recording into files")  # fmt: skip
            eyes = found
            eye_cols = tuple((lx, ly, lp) if e == "left" else (rx, ry, rp) for e in eyes)
            if "RATE" in words and words.index("RATE") + 1 < len(words):
                rate = number(words[words.index("RATE") + 1], path, n, "RATE", missing=False)
    if len(t.data) == 0:
        raise ImportFormatError(f"{path}: holds no samples (no SAMPLES line or no sample "
                                "lines); convert the EDF with samples (edf2asc -s or both)")  # fmt: skip
    eye = choose_eye(options.eye, eyes, path)
    ta = t.numpy()
    arrays = [c.numpy() for c in (lx, ly, rx, ry)]
    x, y, valid = combine_eyes(eye, *arrays)
    events_eye = "R" if eye == "right" or eyes == ("right",) else "L"
    trial_list = trials.finish(float(ta[-1]))
    return [ImportedRecording(
        participant=options.participant or path.stem,
        time_ms=ta, x=x, y=y, valid=valid,
        left_x=arrays[0], left_y=arrays[1], right_x=arrays[2], right_y=arrays[3],
        left_pupil=lp.numpy(), right_pupil=rp.numpy(),
        fix=in_intervals_mask(ta, fixations[events_eye]),
        trials=trial_list, events=events,
        rate_hz=rate if math.isfinite(rate) else rate_of(ta),
        screen_px=options.screen_px or screen,
        eyes_recorded=eyes, eye=eye, source=str(path),
        metadata={"tracker_events_eye": events_eye},
    )]  # fmt: skip
