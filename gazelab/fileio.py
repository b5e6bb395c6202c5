"""Small file helpers shared by the report, the saliency cache, the mask export and the
training records."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to a temporary name beside ``path``, flush it to disk, then rename it
    over ``path``: readers (and a crash) see the old file or the whole new one."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def write_csv_rows(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows (dicts with the same keys) as CSV with a header; list values are written as
    JSON, ``None`` as an empty cell."""
    with open(path, "w", newline="") as f:
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
