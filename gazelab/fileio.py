"""Small file helpers: the one atomic writer every command's files go through
(:func:`atomic_path`, :func:`atomic_open`, :func:`atomic_write`; see ``docs/outputs.md``),
clean-up of killed writers' temporaries, safe file names."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray


def temporary_name(path: str | Path, *, keep_suffix: bool = False) -> Path:
    """The temporary name beside ``path`` that this process writes before renaming:
    ``.NAME.PID.tmp`` (the pid lets :func:`clean_stale_temporaries` tell dead writers'),
    or ``.NAME.PID.tmp.SUFFIX`` with ``keep_suffix`` for writers that choose the format by
    the name's suffix (Keras needs ``.keras``)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}.tmp{p.suffix if keep_suffix else ''}")


def fsync_folder(folder: str | Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """The one way gazelab writes a file: the body writes a temporary name beside ``path``
    (yielded; any writer: Keras, PIL, matplotlib, numpy, ``open``), then the file is
    flushed to disk (fsync), renamed over ``path`` and the folder flushed too. Readers,
    and a crash or SIGKILL at any moment, see the old file (or none) or the whole new
    one, never a part. On any failure the temporary is removed; one left by a killed
    process is removed by :func:`clean_stale_temporaries` on a later run.

    Examples
    --------
    >>> with atomic_path("best.keras", keep_suffix=True) as tmp:  # doctest: +SKIP
    ...     model.save(tmp)
    """
    p = Path(path)
    tmp = temporary_name(p, keep_suffix=keep_suffix)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(p.parent if str(p.parent) else ".")


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` through :func:`atomic_path`: the file appears under ``path``
    whole, when the ``with`` block ends without an error. ``mode`` is ``"w"`` or ``"wb"``
    (``"x"``/``"a"`` make no sense for a new temporary)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f
        f.flush()


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (``str`` as UTF-8) to ``path`` whole or not at all
    (:func:`atomic_path`)."""
    with atomic_open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def save_model(model: Any, path: str | Path) -> None:
    """``model.save(path)`` (Keras, ``.keras``) through :func:`atomic_path`: the model is
    saved under a temporary ``.NAME.PID.tmp.keras`` and renamed, so a kill during the save
    never leaves a part of a zip under ``path``."""
    with atomic_path(path, keep_suffix=True) as tmp:
        model.save(tmp)


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?:\.[^.]+)?$")


def clean_stale_temporaries(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Remove the ``.NAME.PID.tmp`` (and ``.NAME.PID.tmp.SUFFIX``) files of writers that
    are gone (their pid no longer runs on this host) from ``folder`` (and its sub-folders
    with ``recursive``); returns the removed paths. Temporaries of live processes (a
    concurrent writer) are kept."""
    root = Path(folder)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    for p in root.rglob(".*.tmp*") if recursive else root.glob(".*.tmp*"):
        m = _TEMPORARY.match(p.name)
        if m is None or not p.is_file() or pid_alive(int(m["pid"])):
            continue
        try:
            p.unlink()
        except FileNotFoundError:  # its writer's other run took it meanwhile
            continue
        removed.append(p)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 probes without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: probe only
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_csv_rows(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows (dicts with the same keys) as CSV with a header; list values are written as
    JSON, ``None`` as an empty cell."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})


SAFE_NAME_MAX_CHARS = 100
"""Longest readable part of a :func:`safe_filename` (file systems allow 255 bytes; callers
add suffixes such as ``_deep_taylor.png``)."""


def safe_filename(name: str) -> str:
    """A file name for ``name`` (an image id) that stays inside the folder it is joined to.

    ``/`` and ``\\`` become ``__``, every other character outside ASCII letters, digits and
    ``-_.`` becomes ``_``, leading dots are dropped (no ``..``, no hidden files) and the
    name is cut to :data:`SAFE_NAME_MAX_CHARS`. A name changed in any way gets ``~`` and 10
    hex digits of its SHA-256 appended: ``~`` is never kept, so a changed name cannot
    equal an unchanged one, and two ids never share a file (``a/b`` and ``a__b`` differ).

    Examples
    --------
    >>> safe_filename("img_001.png")
    'img_001.png'
    >>> safe_filename("S005/001/S005_001_00000011.png")
    'S005__001__S005_001_00000011.png~522fed6a26'
    """
    readable = "".join(
        c if (c.isascii() and c.isalnum()) or c in "-_." else "__" if c in "/\\" else "_"
        for c in name
    ).lstrip(".")[:SAFE_NAME_MAX_CHARS]
    if readable == name and name:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{readable or '_'}~{digest}"


def array_sha256(x: NDArray[Any]) -> str:
    """SHA-256 (hex) of an array's dtype, shape and bytes."""
    h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()
