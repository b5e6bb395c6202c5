"""What every importer shares: the parsed recording, the options, the registry, the line reader.

An importer is a pure function ``parse(path, options) -> list[ImportedRecording]``: it
reads the file line by line (bounded memory: a line longer than :data:`MAX_LINE_BYTES`
is an error, never read whole), checks every value it keeps, and returns one
:class:`ImportedRecording` per recording and participant in the file. It never touches a
store; :mod:`gazelab.gaze.importers.ingest` writes the recordings, one transaction per
file. Every problem in the file is an :class:`ImportFormatError` whose message names the
file, the line and the problem (one line; the CLI exits with status 2).
"""

from __future__ import annotations

import codecs
import gzip
import math
import re
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby, repeat
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.errors import GazelabError
from gazelab.plugins import Registry

MAX_LINE_BYTES = 1 << 20
"""Longest line read (1 MiB): a longer one is an error, found without reading it whole."""

EYES = ("left", "right", "average")


class ImportFormatError(GazelabError, ValueError):
    """A recording file is not what its importer reads; the message says file, line, problem."""


@dataclass(frozen=True)
class Rect:
    """Where an image was on screen, px: top-left ``(x, y)`` and size ``(w, h)`` (any
    aspect ratio); ``w``/``h`` NaN when the file gives only the position."""

    x: float
    y: float
    w: float
    h: float

    def as_dict(self) -> dict[str, float | None]:
        return {k: (v if math.isfinite(v) else None) for k, v in
                (("x", self.x), ("y", self.y), ("w", self.w), ("h", self.h))}  # fmt: skip


@dataclass
class Trial:
    """One trial: tracker-clock bounds (ms, inclusive), image id, image rectangle, variables."""

    start_ms: float
    end_ms: float
    image_id: str
    image_onset_ms: float | None = None
    rect: Rect | None = None
    variables: dict[str, str] = field(default_factory=dict)
    label: str = ""


@dataclass
class ImportedRecording:
    """One recording of one participant, as the file gives it.

    Sample arrays are ``(N,)``, on the tracker's clock, in file order; positions are
    screen pixels (origin top-left), NaN where missing. ``x``/``y``/``valid`` are the
    chosen eye (``eye``: left, right, or the average of the valid eyes with one-eye
    fallback); ``left_*``/``right_*`` keep both eyes as recorded. ``fix`` is true inside
    one of the tracker's own fixations (of the chosen eye; the first recorded eye for
    ``average``). ``events`` are the tracker's events and messages as
    ``(time_ms, kind, payload)``.
    """

    participant: str
    time_ms: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    valid: NDArray[np.bool_]
    left_x: NDArray[np.float64]
    left_y: NDArray[np.float64]
    right_x: NDArray[np.float64]
    right_y: NDArray[np.float64]
    left_pupil: NDArray[np.float64]
    right_pupil: NDArray[np.float64]
    fix: NDArray[np.bool_]
    trials: list[Trial]
    events: list[tuple[float, str, dict[str, Any]]]
    rate_hz: float
    screen_px: tuple[int, int] | None
    eyes_recorded: tuple[str, ...]
    eye: str
    source: str
    recording: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # exact columns of a re-imported gazelab export (bids): every sample field, "phase"
    # and "trial_index" as exported; the session clock, settings and image order with them
    columns: dict[str, Any] = field(default_factory=dict)
    settings_toml: str = ""
    start_local_s: float | None = None
    stimulus_order: list[str] | None = None
    event_trials: list[int | None] | None = None  # per event, when on the session clock

    @property
    def n(self) -> int:
        return int(self.time_ms.size)


@dataclass(frozen=True)
class CsvMapping:
    """Column mapping of a generic CSV/TSV (``csv`` importer).

    ``time`` (unit ``time_unit``: s, ms, us, ns); ``x``/``y`` (or ``left_x`` ...
    ``right_y``) in ``xy_unit``: px, norm (fractions of the screen) or deg (from the
    screen centre, needs the display geometry); ``validity`` (or per eye
    ``left_validity``/``right_validity``) a column whose value in ``valid_values`` (or,
    when that is empty, a number ≤ ``valid_max``) marks a valid sample;
    ``trial``/``image``/``participant`` optional columns.
    """

    time: str = "time"
    time_unit: str = "ms"
    x: str = "x"
    y: str = "y"
    left_x: str = ""
    left_y: str = ""
    right_x: str = ""
    right_y: str = ""
    xy_unit: str = "px"
    validity: str = ""
    left_validity: str = ""
    right_validity: str = ""
    valid_values: tuple[str, ...] = ()
    valid_max: float = math.inf
    trial: str = ""
    image: str = ""
    participant: str = ""
    delimiter: str = ""


@dataclass(frozen=True)
class ImportOptions:
    """What the user says about a recording (CLI flags or the import TOML)."""

    participant: str = ""
    eye: str = ""  # left | right | average; "" = average of what was recorded
    screen_px: tuple[int, int] | None = None
    screen_mm: tuple[float, float] | None = None
    distance_mm: float | None = None
    trial_start: str = ""  # regular expression on messages; group 1 (if any) = image id
    trial_end: str = ""
    image_var: str = ""  # a TRIAL_VAR naming the image
    encoding: str = "utf-8"  # the file's text encoding
    csv: CsvMapping = field(default_factory=CsvMapping)


Parser = Callable[[Path, ImportOptions], list[ImportedRecording]]


@dataclass(frozen=True)
class Importer:
    name: str
    parse: Parser
    help: str


IMPORTERS: Registry[Importer] = Registry(
    "import format", "gazelab.gaze.importers", group="gazelab.importers", error=ImportFormatError
)
"""Importers by format name: the modules of :mod:`gazelab.gaze.importers` and those of
installed packages' ``gazelab.importers`` entry points, imported on first use."""


def register_importer(name: str, help: str) -> Callable[[Parser], Parser]:
    """Register ``parse(path, options) -> recordings`` under ``name``."""

    def add(fn: Parser) -> Parser:
        IMPORTERS.add(name, Importer(name, fn, help))
        return fn

    return add


# -- reading ----------------------------------------------------------------------------------
def read_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a text file (UTF-8 unless told), one line at a time (no
    line ending; a ``.gz`` file is read through gzip).

    Bounded memory: a line longer than :data:`MAX_LINE_BYTES` raises without being read
    whole; bytes that are not in ``encoding`` raise naming the line.
    """
    try:
        label = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
    except LookupError:
        raise ImportFormatError(f"--encoding {encoding!r} is not a known text encoding") from None
    name = str(path)
    try:
        fh: Any = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except OSError as exc:
        raise ImportFormatError(f"{name}: cannot read it ({exc.strerror})") from exc
    with fh:
        count = 0
        while True:
            try:
                raw = fh.readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError) as exc:  # a damaged or cut .gz
                raise ImportFormatError(f"{name}:{count + 1}: cannot be read ({exc})") from None
            if not raw:
                return
            count += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise ImportFormatError(
                    f"{name}:{count}: line longer than {MAX_LINE_BYTES // 1024} KiB; "
                    "is this a text export of the right format?"
                )
            if count == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ImportFormatError(
                    f"{name}:{count}: not {label} text (byte {exc.start + 1} of the line); "
                    "export the file as UTF-8, or give its --encoding (e.g. latin-1)"
                ) from None
            yield count, text.rstrip("\r\n")


def fail(path: Path | str, line: int, problem: str) -> ImportFormatError:
    """The one-line error of a problem at ``path:line``."""
    return ImportFormatError(f"{path}:{line}: {problem}")


_MISSING = ("", ".", "n/a", "NA")


def number(token: str, path: Path | str, line: int, what: str, *, missing: bool = True) -> float:
    """A finite number from ``token``; empty (or ``.``) is NaN when ``missing``; NaN, inf
    or text are errors naming the line."""
    try:
        v = float(token)
    except ValueError:
        t = token.strip()
        if missing and t in _MISSING:
            return math.nan
        raise fail(path, line, f"{what} {t[:40]!r} is not a number") from None
    if v - v != 0.0:  # NaN or ±inf
        raise fail(path, line, f"{what} is {token.strip()[:40]!r}, not a finite number")
    return v


class Column:
    """A growing float64 column (compact: ``array('d')``, not a list of floats)."""

    def __init__(self) -> None:
        self.data = array("d")
        self.append = self.data.append  # bound once: no Python frame per value

    def numpy(self) -> NDArray[np.float64]:
        return np.frombuffer(self.data, dtype=np.float64).copy()


def check_time(path: Path | str, line: int, t: float, previous: float) -> None:
    """Sample times must not go backwards (equal times are kept: 2 kHz files in whole ms)."""
    if t < previous:
        raise fail(path, line, f"time {t:g} goes back from {previous:g}; samples must be in "
                   "time order (one recording per file, or split the file)")  # fmt: skip


def choose_eye(eye: str, recorded: tuple[str, ...], path: Path | str) -> str:
    """The eye to use: ``left``, ``right`` or ``average``; default the average of the
    recorded eyes (the one eye of a monocular file)."""
    if eye and eye not in EYES:
        raise ImportFormatError(f"--eye {eye!r}: choose one of {', '.join(EYES)}")
    if not eye:
        return "average" if len(recorded) == 2 else (recorded[0] if recorded else "average")
    if eye in ("left", "right") and not recorded:
        raise ImportFormatError(
            f"{path}: the file has no per-eye gaze; leave out --eye (or give --eye average)"
        )
    if eye in ("left", "right") and eye not in recorded:
        raise ImportFormatError(
            f"{path}: the {eye} eye was not recorded (recorded: {', '.join(recorded)}); "
            f"choose --eye {' or '.join(recorded)}"
        )
    return eye


def combine_eyes(
    eye: str,
    lx: NDArray[np.float64],
    ly: NDArray[np.float64],
    rx: NDArray[np.float64],
    ry: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Gaze of ``eye``: one eye's, or the mean of the valid eyes (one-eye fallback).

    Returns ``(x, y, valid)``, ``(N,)`` each; an eye is valid where both its coordinates
    are finite.
    """
    lv = np.isfinite(lx) & np.isfinite(ly)
    rv = np.isfinite(rx) & np.isfinite(ry)
    if eye == "left":
        return lx.copy(), ly.copy(), lv
    if eye == "right":
        return rx.copy(), ry.copy(), rv
    both = lv & rv
    x = np.where(both, 0.5 * (lx + rx), np.where(lv, lx, rx))
    y = np.where(both, 0.5 * (ly + ry), np.where(lv, ly, ry))
    valid = lv | rv
    return np.where(valid, x, np.nan), np.where(valid, y, np.nan), valid


def image_id_of(name: str) -> str:
    """An image id from a tracker's file name: forward slashes, no leading ``./``."""
    text = name.strip().strip('"').replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def compile_pattern(pattern: str, what: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ImportFormatError(f"{what} {pattern!r} is not a regular expression ({exc})") from None


def in_intervals_mask(t: NDArray[np.float64], iv: list[tuple[float, float]]) -> NDArray[np.bool_]:
    """``(N,)`` bool: ``t`` inside one of the inclusive ``[a, b]`` intervals."""
    from gazelab.gaze.recordings import in_intervals

    if not iv:
        return np.zeros(t.size, dtype=bool)
    return in_intervals(t, np.array(iv, dtype=np.float64))


def rate_of(t: NDArray[np.float64]) -> float:
    """Sampling rate (Hz) from the median positive step of ``t`` (ms); NaN if unknown."""
    dt = np.diff(t)
    dt = dt[dt > 0]
    return 1000.0 / float(np.median(dt)) if dt.size else math.nan


class Accumulator:
    """The samples of one recording of a table file (Tobii, Gazepoint, CSV), as read.

    Per sample: time (ms), the file's combined gaze ``x``/``y``/``valid`` and each eye's
    gaze and pupil (NaN where absent), the tracker's fixation index (0 outside its
    fixations) and a stimulus key (runs of one non-empty key are trials).
    """

    def __init__(self, participant: str, recording: str) -> None:
        self.participant = participant
        self.recording = recording
        self.t, self.x, self.y = Column(), Column(), Column()
        self.lx, self.ly, self.rx, self.ry = Column(), Column(), Column(), Column()
        self.lp, self.rp = Column(), Column()
        self.valid = bytearray()
        self.fix_index = array("q")
        self.runs: list[list[Any]] = []  # [first sample, last sample, key, image id, rect]
        self.last_run: list[Any] | None = None  # runs[-1]
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.previous = -math.inf

    def add(
        self, path: Path | str, line: int, t: float, gaze: tuple[float, float, bool],
        eyes: tuple[float, float, float, float, float, float], fix_index: int,
        key: str = "", image: str = "", rect: Rect | None = None,
    ) -> None:  # fmt: skip
        if t < self.previous:  # once per sample: the columns' appends written out
            check_time(path, line, t, self.previous)
        self.previous = t
        i = len(self.t.data)
        self.t.append(t)
        self.x.append(gaze[0])
        self.y.append(gaze[1])
        self.valid.append(1 if gaze[2] else 0)
        lx, ly, rx, ry, lp, rp = eyes
        self.lx.append(lx)
        self.ly.append(ly)
        self.rx.append(rx)
        self.ry.append(ry)
        self.lp.append(lp)
        self.rp.append(rp)
        self.fix_index.append(fix_index)
        if key:
            last = self.last_run
            if last is not None and last[2] == key and last[1] == i - 1:
                last[1] = i
            else:
                self.last_run = [i, i, key, image or key, rect]
                self.runs.append(self.last_run)

    def extend(
        self, t: NDArray[np.float64], gaze: tuple[NDArray[np.float64], NDArray[np.float64],
                                                  NDArray[np.bool_]],
        eyes: tuple[NDArray[np.float64], ...], fix_index: NDArray[np.int64],
        runs: list[tuple[int, int, str, str, Rect | None]],
    ) -> bool:  # fmt: skip
        """:meth:`add` for a block of samples as columns (``(M,)`` each), with their runs of
        one key ``(first, last, key, image, rect)`` counted from the block's first sample.
        ``False`` (nothing added) when a time goes back: the checked reader names the line."""
        if t.size == 0:
            return True
        if t[0] < self.previous or bool(np.any(t[1:] < t[:-1])):
            return False
        self.previous = float(t[-1])
        base = len(self.t.data)
        for column, values in zip(
            (self.t, self.x, self.y, self.lx, self.ly, self.rx, self.ry, self.lp, self.rp),
            (t, gaze[0], gaze[1], *eyes),
            strict=True,
        ):
            column.data.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        self.valid += gaze[2].astype(np.uint8).tobytes()
        self.fix_index.frombytes(np.ascontiguousarray(fix_index, dtype=np.int64).tobytes())
        for a, b, key, image, rect in runs:
            last = self.last_run
            if last is not None and last[2] == key and last[1] == base + a - 1:
                last[1] = base + b
            else:
                self.last_run = [base + a, base + b, key, image or key, rect]
                self.runs.append(self.last_run)
        return True

    def build(
        self, path: Path, options: ImportOptions, has_eyes: tuple[str, ...],
        screen: tuple[int, int] | None, rate_hz: float | None = None,
        fixation_events: list[tuple[float, str, dict[str, Any]]] | None = None,
    ) -> ImportedRecording:  # fmt: skip
        t = self.t.numpy()
        lx, ly, rx, ry = (c.numpy() for c in (self.lx, self.ly, self.rx, self.ry))
        eye = choose_eye(options.eye, has_eyes, path)
        if has_eyes:
            x, y, valid = combine_eyes(eye, lx, ly, rx, ry)
        else:
            x, y = self.x.numpy(), self.y.numpy()
            valid = np.frombuffer(bytes(self.valid), dtype=np.uint8).astype(bool)
            valid &= np.isfinite(x) & np.isfinite(y)
        idx = np.frombuffer(self.fix_index, dtype=np.int64)
        events = list(self.events)
        if fixation_events is None:
            fixation_events = _index_events(t, x, y, valid, idx)
        events += fixation_events
        trials = [
            Trial(
                float(t[a]),
                float(t[b]),
                image_id_of(str(img)),
                float(t[a]),
                rect,
                {"key": str(key)},
                str(key),
            )  # fmt: skip
            for a, b, key, img, rect in self.runs
        ]
        return ImportedRecording(
            participant=options.participant or self.participant or path.stem,
            time_ms=t, x=x, y=y, valid=valid, left_x=lx, left_y=ly, right_x=rx, right_y=ry,
            left_pupil=self.lp.numpy(), right_pupil=self.rp.numpy(), fix=idx > 0,
            trials=trials, events=events,
            rate_hz=rate_hz if rate_hz is not None and math.isfinite(rate_hz) else rate_of(t),
            screen_px=options.screen_px or screen, eyes_recorded=has_eyes, eye=eye,
            source=str(path), recording=self.recording,
        )  # fmt: skip


def _index_events(
    t: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    valid: NDArray[np.bool_], idx: NDArray[np.int64],
) -> list[tuple[float, str, dict[str, Any]]]:  # fmt: skip
    """``tracker_fixation`` events of runs of one positive fixation index: first and last
    sample time, mean valid position."""
    if t.size == 0:
        return []
    change = np.flatnonzero(np.diff(idx) != 0) + 1
    starts, stops = np.r_[0, change], np.r_[change, t.size]
    out: list[tuple[float, str, dict[str, Any]]] = []
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        if idx[a] <= 0:
            continue
        ok = valid[a:b]
        mx = float(np.mean(x[a:b][ok])) if ok.any() else None
        my = float(np.mean(y[a:b][ok])) if ok.any() else None
        out.append((float(t[a]), "tracker_fixation", {
            "index": int(idx[a]), "onset_ms": float(t[a]), "offset_ms": float(t[b - 1]),
            "x": mx, "y": my,
        }))  # fmt: skip
    return out


def split_row(line: str, sep: str) -> list[str]:
    """Cells of one delimited line (quoted cells with ``csv`` rules when quotes appear)."""
    if '"' not in line:
        return line.split(sep)
    import csv

    return next(csv.reader([line], delimiter=sep))


def table_rows(
    lines: Iterator[tuple[int, str]], sep: str, width: int, path: Path | str
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each non-blank line of a delimited table whose header has
    ``width`` columns; a line with another number of cells is an :class:`ImportFormatError`
    naming the file and line (a cut line, or extra separators)."""
    for n, line in lines:
        if not line.strip():
            continue
        row = split_row(line, sep)
        if len(row) != width:
            raise fail(path, n, f"{len(row)} fields, the header has {width}; the line is cut "
                       "or has extra separators")  # fmt: skip
        yield n, row


def delimiter_of(header: str) -> str:
    """Tab when the header has one, else ``;`` when it has no comma, else ``,``."""
    if "\t" in header:
        return "\t"
    if ";" in header and "," not in header:
        return ";"
    return ","


def normalise(name: str) -> str:
    """A header for matching: lower case, no units in () or [], letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"[\(\[].*?[\)\]]", "", name.lower()))


# -- the block-and-column reader ---------------------------------------------------------------
BLOCK_BYTES = 1 << 21
"""Bytes of a file parsed at a time by :func:`table_blocks` (bounded memory)."""

MISSING_TOKENS = ("", ".", "n/a", "NA")
"""The cells :func:`number` reads as no value (after stripping spaces)."""


class Irregular(Exception):
    """:func:`table_blocks` met something the line-by-line reader must judge (and name)."""


def table_blocks(
    path: Path, encoding: str, sep: str | None = None, *, crlf: bool = False,
    block: int = BLOCK_BYTES, max_line: int = MAX_LINE_BYTES,
) -> Iterator[tuple[str, str, list[str], int]]:  # fmt: skip
    """A delimited table a block at a time: ``(header line, separator, cells, rows)`` per
    block of ``block`` bytes, ``cells`` the block's rows' cells in one flat list (column
    ``j`` is ``cells[j::width]``), ``width`` the header's.

    Raises :class:`Irregular` at anything that is not a plain, regular table, so that the
    caller reads the file line by line instead (whose errors name the line): another
    encoding than UTF-8, other bytes, a line longer than ``max_line`` bytes, a quote, a
    blank line, a line of another width, a carriage return (unless ``crlf``: then CRLF
    line endings are read as the line reader reads them). A UTF-8 BOM is skipped; ``sep``
    ``None`` is the header's (:func:`delimiter_of`).
    """
    try:
        if codecs.lookup(encoding).name != "utf-8":
            raise Irregular
    except LookupError:
        raise Irregular from None
    head: str | None = None
    width = 0
    carry = b""
    try:
        fh: Any = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        with fh:
            while True:
                more = fh.read(block)
                data = carry + more
                if not more:
                    if not data:
                        return
                    chunk, carry = data, b""  # the last line, without a line ending
                else:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        if len(data) > max_line:
                            raise Irregular
                        carry = data
                        continue
                    chunk, carry = data[:cut], data[cut + 1 :]
                if len(carry) > max_line:
                    raise Irregular
                if head is None and chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8) :]
                text = chunk.decode("utf-8")
                if "\r" in text:
                    if not crlf:
                        raise Irregular
                    text = text.replace("\r\n", "\n")
                    if text.endswith("\r"):
                        text = text[:-1]
                    if "\r" in text:
                        raise Irregular
                lines = text.split("\n")
                if max(map(len, lines)) * 4 > max_line:  # UTF-8: at most 4 bytes a character
                    if max(map(len, chunk.split(b"\n"))) > max_line:
                        raise Irregular
                if head is None:
                    head = lines.pop(0)
                    sep = sep or delimiter_of(head)
                    width = len(split_row(head, sep))
                    text = text[len(head) + 1 :]
                assert sep is not None
                if lines:
                    if '"' in text or set(map(str.count, lines, repeat(sep))) != {width - 1}:
                        raise Irregular  # quoted cells, a blank line, another width
                    yield head, sep, text.replace("\n", sep).split(sep), len(lines)
                if not more:
                    return
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        raise Irregular from None


def float_cells(
    cells: Sequence[str], missing: tuple[str, ...] = MISSING_TOKENS, *, strip: bool = True
) -> NDArray[np.float64] | None:
    """``(N,)`` values of one column's cells exactly as :func:`number` reads them (``float``
    of the text; a ``missing`` token, after stripping spaces when ``strip``, is NaN), or
    ``None`` where :func:`number` would refuse a cell (text, NaN, inf).

    Plain decimals are read as bytes (:func:`plain_decimals`); else a column of few
    distinct texts (validity codes, a stimulus position) is read one distinct text at a
    time."""
    n = len(cells)
    values = plain_decimals(cells)
    if values is not None:
        return values
    gone = frozenset(missing)
    sample = cells[:512]
    if len(set(sample)) * 8 <= len(sample):
        distinct = set(cells)
        if len(distinct) * 8 <= n:
            table: dict[str, float] = {}
            for text in distinct:
                v = _cell_value(text, gone, strip)
                if v is None:
                    return None
                table[text] = v
            return np.fromiter(map(table.__getitem__, cells), np.float64, n)
    try:
        values = np.fromiter(map(float, cells), np.float64, n)
    except ValueError:
        if not missing:
            return None
    else:
        return values if bool(np.isfinite(values).all()) else None
    try:
        values = np.fromiter(
            (math.nan if (c.strip() if strip else c) in gone else float(c) for c in cells),
            np.float64, n,
        )  # fmt: skip
    except ValueError:
        return None
    n_missing = sum(1 for c in cells if (c.strip() if strip else c) in gone)
    if int(np.count_nonzero(np.isfinite(values))) != n - n_missing:
        return None
    return values


_TEN = 10.0 ** np.arange(23)
"""``10**k`` for k = 0 ... 22: the powers of ten a double holds exactly."""

_MAX_DIGITS = 15
"""Digits of a cell read by :func:`plain_decimals` at the most (``10**15 < 2**53``)."""


def plain_decimals(cells: Sequence[str]) -> NDArray[np.float64] | None:
    """``(N,)`` values of cells that are all plain decimals (``-?[0-9]*\\.?[0-9]*``, one to
    15 digits), each cell's value exactly ``float(cell)``, read without a Python call per
    cell; ``None`` for anything else (a missing token, spaces, an exponent, a ``+``, more
    digits, other characters, cells of one length laid out differently), which the caller
    reads with ``float``.

    The cells are grouped by length; in each group every cell must have the first cell's
    layout (the sign and the point at the same places, digits elsewhere), so the group
    is a ``(rows, length)`` byte matrix whose digit columns give each cell's digits ``m``
    (an integer below ``10**15``, summed exactly in doubles) and whose point gives the
    count ``k`` of digits after it. The value is ``m / 10**k``: both are exact doubles
    (``m < 2**53``, ``k <= 22``), so the IEEE division rounds the exact decimal
    ``m * 10**-k`` once, to nearest, which is what ``float`` returns (correct rounding;
    Clinger's fast path: W. D. Clinger, *How to read floating point numbers accurately*,
    PLDI 1990). A sign flips the value, rounding being symmetric (``-0.0`` kept).
    """
    n = len(cells)
    if n == 0:
        return None
    try:
        raw = "\n".join(cells).encode("ascii")
    except UnicodeEncodeError:
        return None
    width = len(cells[0])
    if len(raw) == n * (width + 1) - 1:  # maybe one length: checked by the line ends
        rows = np.frombuffer(raw + b"\n", np.uint8).reshape(n, width + 1)
        if not bool((rows[:, width] == 10).all()):
            return None
        return _decimal_rows(rows[:, :width])
    data = np.frombuffer(raw, np.uint8)
    ends = np.flatnonzero(data == 10)
    if ends.size != n - 1:  # a cell holds a line end
        return None
    starts = np.empty(n, np.int64)
    starts[0], starts[1:] = 0, ends + 1
    lengths = np.empty(n, np.int64)
    lengths[:-1], lengths[-1] = ends - starts[:-1], len(raw) - starts[-1]
    out = np.empty(n)
    for length in np.flatnonzero(np.bincount(lengths)).tolist():
        at = np.flatnonzero(lengths == length)
        values = _decimal_rows(data[starts[at, None] + np.arange(length)])
        if values is None:
            return None
        out[at] = values
    return out


def _decimal_rows(rows: NDArray[np.uint8]) -> NDArray[np.float64] | None:
    """:func:`plain_decimals` of cells of one length, ``(N, length)`` ASCII bytes."""
    if rows.shape[1] == 0:
        return None
    first = rows[0]
    is_digit = (first >= 48) & (first <= 57)
    digits, marks = np.flatnonzero(is_digit), np.flatnonzero(~is_digit)
    layout = bytes(first[marks])
    if layout not in (b"", b".", b"-", b"-.") or not 0 < digits.size <= _MAX_DIGITS:
        return None
    negative = layout.startswith(b"-")
    if negative and first[0] != 45:  # a minus sign after a digit
        return None
    if marks.size and not bool((rows[:, marks] == first[marks]).all()):
        return None
    d = rows[:, digits]
    if not bool(((d >= 48) & (d <= 57)).all()):
        return None
    after = int(np.count_nonzero(digits > marks[-1])) if layout.endswith(b".") else 0
    m = np.zeros(len(d))
    for j in range(digits.size):  # Horner: integers below 10**15, every step exact
        m = m * 10.0 + (d[:, j] - 48)
    values: NDArray[np.float64] = m / _TEN[after]
    return -values if negative else values


def _cell_value(text: str, gone: frozenset[str], strip: bool) -> float | None:
    """One cell as :func:`float_cells` reads it; ``None`` where refused."""
    try:
        v = float(text)
    except ValueError:
        return math.nan if (text.strip() if strip else text) in gone else None
    return v if math.isfinite(v) else None


def key_runs(keys: Sequence[str]) -> list[tuple[int, int, str, str]]:
    """Runs of one non-empty key (spaces stripped) as ``(first, last, key, key)``, indices
    into ``keys``: the trials :meth:`Accumulator.add` finds, for :meth:`Accumulator.extend`."""
    runs: list[tuple[int, int, str, str]] = []
    i = 0
    for raw, group in groupby(keys):
        m = len(list(group))
        key = raw.strip()
        if key:
            if runs and runs[-1][2] == key and runs[-1][1] == i - 1:
                runs[-1] = (runs[-1][0], i + m - 1, key, key)
            else:
                runs.append((i, i + m - 1, key, key))
        i += m
    return runs
