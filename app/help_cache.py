"""``gazelab [CMD ...] --help`` answered from a cache, so asking for help costs no imports.

The help of a command lists what the registries hold (trackers, detectors, analyzers, mask
algorithms, dataset layouts and third-party plug-ins), and the registries learn that by
importing their plug-in modules, which import NumPy, SciPy, Numba ... (0.5-0.8 s of CPU).
The text they produce changes only when gazelab's sources, the installed distributions or
the environment change, so the first ``--help`` of a command (or ``--version``) stores its
text under ``$XDG_CACHE_HOME/gazelab/help/`` (``~/.cache/gazelab/help/``) with a key of
everything it depends on, and a later one whose key matches prints it without building the
parser (a few hundredths of a second of CPU beyond Python's own start).

The key (:func:`fingerprint`): the words asked about, the Python running, gazelab's
version, the size and modification time of every ``.py`` file of gazelab, the folders on
``sys.path`` with their modification times and the distributions installed in them (a
plug-in package installed, upgraded or removed changes both), the environment variables
help text may read and the terminal width the help is wrapped to. Any difference is a
miss, and a miss builds the parser as always. The key is stored whole beside the text and
compared as text, no hash. Not seen by the key: a third-party plug-in's own source edited
in place (its entry points are read from its installed metadata, which did not change);
``gazelab plugins`` always reads the registries. A cache that cannot be read or written is
ignored: help never fails because of it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

REQUESTS = ("-h", "--help", "--version")
"""The flags answered from the cache, when they end a command line of plain words."""

PACKAGES = (
    "gazelab",
    "gazelab.app",
    "gazelab.annotation",
    "gazelab.gaze",
    "gazelab.analysis",
    "gazelab.models",
)
"""gazelab's root packages: each maps a folder of the source tree (or lies inside
``gazelab/`` in a wheel); every ``.py`` file below them is part of the key."""

ENVIRONMENT = ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "PYTHONPATH", "COLUMNS", "LINES",
               "LANG", "LC_ALL", "LC_CTYPE")  # fmt: skip
"""Environment variables (besides every ``GAZELAB_*``) that help text may depend on."""


def request(argv: Sequence[str]) -> tuple[str, ...] | None:
    """The words of a help request (``("masks", "--help")``), or ``None`` for any other
    command line (those are never answered from the cache)."""
    if not argv or argv[-1] not in REQUESTS:
        return None
    if any(not word or word.startswith("-") for word in argv[:-1]):
        return None
    return tuple(argv)


def usable() -> bool:
    """Whether this process may read and write the cache: only while no registry has been
    read in it (``gazelab.plugins`` not imported), since an entry registered by the running
    program itself (``register_layout(...)`` before calling ``main``) is not in the key."""
    return "gazelab.plugins" not in sys.modules


def cache_folder() -> Path:
    """``$XDG_CACHE_HOME/gazelab/help`` (``~/.cache/gazelab/help``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "gazelab" / "help"


def fingerprint(words: Sequence[str]) -> str:
    """Everything the help of ``words`` depends on (module docstring), as one line."""
    import importlib.util

    from gazelab import __version__

    parts: list[object] = [list(words), sys.executable, sys.version, __version__]
    seen: list[str] = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            if not any(folder == s or folder.startswith(s + os.sep) for s in seen):
                seen.append(folder)
    for folder in sorted(seen):
        parts.append(_tree(folder))
    parts.append([(p, _mtime(p), _distributions(p)) for p in sys.path])
    parts.append(sorted((k, v) for k, v in os.environ.items()
                        if k.startswith("GAZELAB_") or k in ENVIRONMENT))  # fmt: skip
    parts.append(_columns())
    return repr(parts)  # one line: repr escapes every newline


def lookup(words: Sequence[str]) -> str | None:
    """The stored help of ``words`` if its key matches today's, else ``None``."""
    try:
        key, _, text = _file(words).read_text(encoding="utf-8").partition("\n")
    except (OSError, ValueError):  # ValueError: not UTF-8
        return None
    return text if key == fingerprint(words) else None


def store(words: Sequence[str], text: str) -> None:
    """Keep ``text`` as the help of ``words`` (atomically; silently not when the cache
    folder cannot be written)."""
    path = _file(words)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{fingerprint(words)}\n{text}", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


@contextlib.contextmanager
def recording(words: Sequence[str]) -> Iterator[None]:
    """Run the parser's help (it prints and exits) inside: what it prints is passed on,
    and kept in the cache when it exits with status 0."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    except SystemExit as done:
        sys.stdout.write(buffer.getvalue())
        if done.code in (0, None):
            store(words, buffer.getvalue())
        raise
    sys.stdout.write(buffer.getvalue())


def _file(words: Sequence[str]) -> Path:
    name = "_".join(w for w in words if not w.startswith("-")) or "gazelab"
    safe = "".join(c if c.isalnum() or c in "+-_" else "_" for c in name)[:80]
    flag = words[-1].lstrip("-")
    return cache_folder() / f"{safe}.{flag}.txt"


def _tree(folder: str) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                try:
                    st = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                found.append((os.path.join(root, name), st.st_mtime_ns, st.st_size))
    return found


def _distributions(folder: str) -> list[str]:
    """The ``*.dist-info`` / ``*.egg-info`` names in ``folder`` (name and version)."""
    try:
        with os.scandir(folder or ".") as entries:
            return sorted(e.name for e in entries if e.name.endswith((".dist-info", ".egg-info")))
    except OSError:
        return []


def _columns() -> int:
    """The width argparse wraps help to (``shutil.get_terminal_size``, without importing
    shutil): ``COLUMNS`` (in the key already), else the terminal's, else 80."""
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def _mtime(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return 0
