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


def safe_filename(name: str) -> str:
    """``name`` with every character other than letters, digits, ``-_.`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def array_sha256(x: NDArray[Any]) -> str:
    """SHA-256 (hex) of an array's dtype, shape and bytes."""
    h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()
