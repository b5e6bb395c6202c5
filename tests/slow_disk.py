"""Run a gazelab command on a slow disk, so that a SIGKILL lands inside a file write.

``python tests/slow_disk.py ROOT -- COMMAND ARGS...`` runs ``gazelab COMMAND ARGS...`` in
this process with every file opened for writing under ``ROOT`` (through ``open``,
``io.open``, ``pathlib``, ``gzip``, ``zipfile``, PIL, matplotlib, Keras ...) written in
:data:`CHUNK` byte pieces, each flushed to the OS and followed by a :data:`DELAY_S` pause:
a 100 KB figure takes about 0.2 s to write instead of a millisecond, and what was
written so far is on disk under whatever name was opened. Writes from C code that
bypass Python file objects (SQLite, TensorFlow checkpoints) are not slowed.
"""

from __future__ import annotations

import builtins
import io
import os
import sys
import time
from typing import Any

CHUNK = 1024
DELAY_S = 0.002
_real_open = io.open


class SlowFile:
    """A writable file whose writes are cut into flushed, delayed chunks."""

    def __init__(self, f: Any) -> None:
        object.__setattr__(self, "_f", f)

    def write(self, data: Any) -> int:
        if isinstance(data, str):
            for i in range(0, len(data), CHUNK):
                self._f.write(data[i : i + CHUNK])
                self._f.flush()
                time.sleep(DELAY_S)
            return len(data)
        mv = memoryview(data).cast("B")
        for i in range(0, mv.nbytes, CHUNK):
            self._f.write(mv[i : i + CHUNK])
            self._f.flush()
            time.sleep(DELAY_S)
        return mv.nbytes

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._f, name, value)

    def __enter__(self) -> SlowFile:
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._f.__exit__(*exc)

    def __iter__(self) -> Any:
        return iter(self._f)


def install(root: str) -> None:
    """Slow every file opened for writing under ``root`` from now on."""
    root = os.path.abspath(root)

    def slow_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        f = _real_open(file, mode, *args, **kw)
        if any(c in mode for c in "wax+") and isinstance(file, (str, bytes, os.PathLike)):
            if os.path.abspath(os.fsdecode(file)).startswith(root + os.sep):
                return SlowFile(f)
        return f

    builtins.open = slow_open
    io.open = slow_open  # type: ignore[assignment]


def main() -> int:
    root, sep, *argv = sys.argv[1:]
    assert sep == "--", "usage: slow_disk.py ROOT -- COMMAND ARGS..."
    install(root)
    from gazelab.app.cli import main as gazelab

    return gazelab(argv)


if __name__ == "__main__":
    sys.exit(main())
