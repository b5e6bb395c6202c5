"""``gazelab import FORMAT FILE... --store S``: other trackers' recordings into a store.

Options come from the command line and from ``--config import.toml`` (the same names,
``-`` as ``_``; a ``[csv]`` table for the column mapping); the command line wins. See
``docs/import.md``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from gazelab.plugins import Choices

_TOP_KEYS: dict[str, type | tuple[type, ...]] = {
    "participant": str, "images": str, "resolution": list, "screen_mm": list,
    "distance_cm": (int, float), "eye": str, "trial_start": str, "trial_end": str,
    "image_var": str, "encoding": str,
}  # fmt: skip
_CSV_FLAGS = (
    ("time", "time column (default: time)"),
    ("time_unit", "s, ms (default), us or ns"),
    ("x", "gaze x column (default: x)"),
    ("y", "gaze y column (default: y)"),
    ("left_x", "left eye x column (instead of x/y)"),
    ("left_y", "left eye y column"),
    ("right_x", "right eye x column"),
    ("right_y", "right eye y column"),
    ("xy_unit", "px (default), norm (fractions of the screen) or deg (from the centre)"),
    ("validity", "validity column"),
    ("left_validity", "left eye validity column"),
    ("right_validity", "right eye validity column"),
    ("valid_values", "comma-separated values of the validity column that mean valid"),
    ("valid_max", "a validity number at most this is valid (e.g. 1 for Tobii codes)"),
    ("trial", "trial column"),
    ("image", "image column"),
    ("participant_column", "participant column (one session per participant)"),
    ("delimiter", "field separator (default: from the header: tab, ';' or ',')"),
)


def _formats() -> tuple[str, ...]:
    from gazelab.gaze.importers import IMPORTERS

    return IMPORTERS.names()


def add_import_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``import`` sub-command."""
    help_ = "import EyeLink, Tobii, Gazepoint, CSV or gazelab BIDS recordings into a store"
    p = sub.add_parser("import", help=help_, description=help_)
    p.set_defaults(handler=cmd_import)
    p.add_argument("format", choices=Choices(_formats),
                   help="file format: eyelink, tobii, gazepoint, csv, bids (or a plug-in's)")  # fmt: skip
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="recordings (bids: *_gaze.tsv.gz files or export folders)")  # fmt: skip
    p.add_argument("--store", required=True, help="project store (.sqlite; made if missing)")
    p.add_argument("--config", help="import TOML holding any of these options")
    p.add_argument("--participant", help="pseudonym (default: in the file, else its name)")
    p.add_argument("--images", help="the image spec the trials' image ids belong to")
    p.add_argument("--resolution", help="screen WIDTHxHEIGHT px (default: from the file)")
    p.add_argument("--screen-mm", nargs=2, type=float, metavar=("W", "H"),
                   help="visible screen size, mm (default: a 27\" screen)")  # fmt: skip
    p.add_argument("--distance-cm", type=float, help="eye-to-screen distance (default 70 cm)")
    p.add_argument("--eye", choices=("left", "right", "average"),
                   help="which gaze: one eye, or the mean of the valid eyes (default)")  # fmt: skip
    p.add_argument("--trial-start", help="regular expression of a trial's start message "
                   "(group 1 = image id); default: TRIALID ... TRIAL_RESULT")  # fmt: skip
    p.add_argument("--trial-end", help="regular expression of a trial's end message")
    p.add_argument("--image-var", help="the TRIAL_VAR naming the image (EyeLink)")
    p.add_argument("--encoding", help="the files' text encoding (default UTF-8), e.g. latin-1")
    g = p.add_argument_group("csv column mapping")
    for name, text in _CSV_FLAGS:
        g.add_argument(f"--{name.replace('_', '-')}", dest=f"csv_{name}", help=text)


def _resolution(value: Any, source: str) -> tuple[int, int] | None:
    from gazelab.gaze.importers import ImportFormatError

    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().split("x")
    else:
        parts = [str(v) for v in value]
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise ImportFormatError(f"{source}: resolution {value!r} is not WIDTHxHEIGHT, "
                                "e.g. 1920x1080") from None  # fmt: skip
    if not (0 < w <= 100_000 and 0 < h <= 100_000):
        raise ImportFormatError(f"{source}: resolution {value!r} must be positive")
    return w, h


def _config(path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The top-level options and the ``[csv]`` table of an import TOML."""
    from gazelab.gaze.importers import ImportFormatError
    from gazelab.settings import read_toml_file

    if not path:
        return {}, {}
    _, data = read_toml_file(path, "import config")
    csv = data.pop("csv", {})
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown or not isinstance(csv, dict):
        raise ImportFormatError(f"{path}: unknown key(s) {unknown[:8]}; use "
                                f"{', '.join(sorted(_TOP_KEYS))} and a [csv] table")  # fmt: skip
    for key, kind in _TOP_KEYS.items():
        if key in data and not isinstance(data[key], kind):
            raise ImportFormatError(f"{path}: {key} = {data[key]!r} has the wrong type")
    return data, csv


def options_of(args: argparse.Namespace) -> tuple[Any, str]:
    """The :class:`ImportOptions` and image spec of the flags and ``--config``."""
    import dataclasses

    from gazelab.gaze.importers import CsvMapping, ImportFormatError, ImportOptions

    top, csv = _config(getattr(args, "config", None))
    src = args.config or "the command line"

    def pick(name: str) -> Any:
        v = getattr(args, name, None)
        return v if v is not None else top.get(name)

    mapping: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(CsvMapping)}
    for key, value in csv.items():
        if key not in known:
            raise ImportFormatError(f"{src}: unknown [csv] key {key!r}; use "
                                    f"{', '.join(sorted(known))}")  # fmt: skip
        mapping[key] = value
    for name, _ in _CSV_FLAGS:
        v = getattr(args, f"csv_{name}", None)
        if v is not None:
            mapping["participant" if name == "participant_column" else name] = v
    if "valid_values" in mapping:
        vv = mapping["valid_values"]
        mapping["valid_values"] = tuple(vv.split(",") if isinstance(vv, str) else map(str, vv))
    if "valid_max" in mapping:
        try:
            mapping["valid_max"] = float(mapping["valid_max"])
        except (TypeError, ValueError):
            raise ImportFormatError(f"valid_max {mapping['valid_max']!r} is not a number") from None
    try:
        csv_mapping = CsvMapping(**mapping)
    except TypeError as exc:
        raise ImportFormatError(f"{src}: bad [csv] mapping ({exc})") from None
    screen_mm = pick("screen_mm")
    distance = pick("distance_cm")
    if screen_mm is not None:
        if len(screen_mm) != 2 or not all(
            isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in screen_mm
        ):
            raise ImportFormatError(f"{src}: screen_mm {screen_mm!r} must be two sizes > 0 (mm)")
        screen_mm = (float(screen_mm[0]), float(screen_mm[1]))
    if distance is not None and not (math.isfinite(distance) and 1 <= distance <= 10_000):
        raise ImportFormatError(f"{src}: distance_cm {distance!r} must be 1..10000")
    options = ImportOptions(
        participant=pick("participant") or "",
        eye=pick("eye") or "",
        screen_px=_resolution(pick("resolution"), src),
        screen_mm=screen_mm,
        distance_mm=None if distance is None else float(distance) * 10.0,
        trial_start=pick("trial_start") or "",
        trial_end=pick("trial_end") or "",
        image_var=pick("image_var") or "",
        encoding=pick("encoding") or "utf-8",
        csv=csv_mapping,
    )
    return options, pick("images") or ""


def _files(fmt: str, names: list[str]) -> list[Path]:
    from gazelab.gaze.importers.bids import gaze_files

    out: list[Path] = []
    for name in names:
        p = Path(name)
        out.extend(gaze_files(p) if fmt == "bids" and p.is_dir() else [p])
    return out


def cmd_import(args: argparse.Namespace) -> int:
    """Import each file (one transaction each); print the sessions made."""
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.importers.ingest import import_file, imported_hashes

    options, images = options_of(args)
    files = _files(args.format, args.files)
    store_path = Path(args.store)
    new_store = not store_path.exists()
    made = 0
    try:
        with SessionStore(store_path, create=True) as store:
            known = imported_hashes(store)
            for path in files:
                ids = import_file(store, args.format, path, options, images, known)
                made += len(ids)
                for sid in ids:
                    rec = store.session(sid)
                    print(f"{path}: session {sid} ({rec.participant}, "
                          f"{store.sample_count(sid):,} samples, "
                          f"{len(rec.stimulus_order)} trials)")  # fmt: skip
    finally:
        if new_store and made == 0:  # a refused first import leaves no empty store behind
            for suffix in ("", "-wal", "-shm"):
                Path(str(store_path) + suffix).unlink(missing_ok=True)
    return 0
