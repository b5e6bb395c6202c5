"""One registry for every extension point: :class:`Registry`, filled by modules.

Trackers, fixation detectors, analyzers, mask algorithms, dataset layouts and importers
are each a :class:`Registry`. An entry is added by a module that registers itself when
imported (``@register_tracker(...)`` and the like); the registry finds those modules
itself, the first time it is read:

* every module of the extension point's own package (``gazelab.gaze.trackers`` ...);
* every module another installed distribution names under the Python entry-point group
  ``gazelab.<kind>`` (``gazelab.trackers``, ``gazelab.detectors`` ...), as pytest and
  napari find their plug-ins. A third-party package declares, in its ``pyproject.toml``::

      [project.entry-points."gazelab.trackers"]
      mytracker = "my_package.my_tracker"

A module that fails to import, the package's own or a third party's, is listed as
unavailable with its error (:meth:`Registry.unavailable`) and every other entry still
loads: one broken plug-in never takes the command line down. Discovery is thread-safe
and happens once (:class:`Discovery`). See ``docs/extending.md``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import threading
from collections.abc import Callable, ItemsView, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from gazelab.errors import GazelabError

T = TypeVar("T")

ENTRY_POINT_PREFIX = "gazelab."
"""Entry-point groups are ``gazelab.<kind>``: ``gazelab.trackers``, ``gazelab.detectors`` ..."""


class RegistryError(GazelabError, ValueError):
    """A name that is not registered (the message lists the choices)."""


@dataclass(frozen=True)
class Unavailable:
    """A plug-in module that failed to import: ``origin`` says where it came from (``module
    gazelab.gaze.trackers.lsl`` or ``entry point toy = toy_pkg.tracker (toy-gazelab 0.1)``)
    and ``error`` why (``ImportError: No module named 'pylsl'``)."""

    name: str
    origin: str
    error: str

    def line(self) -> str:
        return f"{self.name}: unavailable, {self.origin} failed to load ({self.error})"


def _error_text(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def import_modules(package: str, failures: dict[str, str] | None = None) -> None:
    """Import every module of ``package`` (each registers itself). With ``failures``, a
    module that fails to import is recorded there (module name -> error) and the others
    still load: one broken plug-in must not take down the rest."""
    pkg = importlib.import_module(package)
    for module in pkgutil.iter_modules(pkg.__path__):
        if failures is None:
            importlib.import_module(f"{package}.{module.name}")
            continue
        try:
            importlib.import_module(f"{package}.{module.name}")
        except Exception as exc:  # recorded for the user, who sees it listed as unavailable
            failures[module.name] = _error_text(exc)


@cache
def _installed_entry_points() -> tuple[Any, ...]:
    """The entry points of the ``gazelab.*`` groups of every distribution on ``sys.path``,
    read once per process. Only distributions whose ``entry_points.txt`` names such a group
    are parsed: ``importlib.metadata.entry_points()`` parses them all (50 ms of CPU with
    270 installed, a third of a ``--help``'s budget); this takes a few ms. The first
    distribution of a name on the path wins, as for imports."""
    found: list[Any] = []
    seen: set[str] = set()
    for folder in sys.path:
        try:
            listing = os.scandir(folder or ".")
        except OSError:  # a zip file, or gone
            continue
        with listing:
            infos = [e.path for e in listing if e.name.endswith((".dist-info", ".egg-info"))]
        for info in sorted(infos):
            try:
                text = Path(info, "entry_points.txt").read_text(encoding="utf-8")
            except (OSError, UnicodeError):
                continue
            if f"[{ENTRY_POINT_PREFIX}" not in text:
                continue
            from importlib.metadata import PathDistribution  # only when there is a plug-in

            dist = PathDistribution(Path(info))
            name = re.sub(r"[-_.]+", "-", str(dist.metadata["Name"] or info)).lower()
            if name not in seen:
                seen.add(name)
                found.extend(dist.entry_points)
    return tuple(found)


def plugin_entry_points(group: str) -> list[Any]:
    """The installed entry points of ``group`` (``gazelab.trackers`` ...), by name."""
    return sorted((ep for ep in _installed_entry_points() if ep.group == group),
                  key=lambda ep: ep.name)  # fmt: skip


class Discovery:
    """Import the plug-in modules of an extension point once, on the first :meth:`ensure`:
    every module of ``package`` (when given), then every module named by an entry point of
    ``group`` (when given).

    Thread-safe: a thread asking while another imports waits until every module is
    registered (threads once saw an incomplete registry); a module that asks the
    registry while being imported gets what is registered so far. A module that fails is
    recorded in ``unavailable`` (and, by module name, in ``failures`` when given).
    """

    def __init__(
        self,
        package: str | None,
        failures: dict[str, str] | None = None,
        *,
        group: str | None = None,
    ) -> None:
        self.package = package
        self.group = group
        self.failures = failures
        self.unavailable: dict[str, Unavailable] = {}
        self._done = False
        self._running = False
        self._lock = threading.RLock()

    def ensure(self) -> None:
        if self._done:
            return
        with self._lock:
            if self._done or self._running:
                return
            self._running = True
            try:
                self._discover()
                self._done = True
            finally:
                self._running = False

    def _discover(self) -> None:
        if self.package is not None:
            failed: dict[str, str] = {}
            import_modules(self.package, failed)
            for name, error in failed.items():
                self.unavailable[name] = Unavailable(name, f"module {self.package}.{name}", error)
            if self.failures is not None:
                self.failures.update(failed)
        if self.group is not None:
            for ep in plugin_entry_points(self.group):
                try:
                    ep.load()  # the module registers itself when imported
                except Exception as exc:  # a broken third-party plug-in is listed, not fatal
                    dist = getattr(ep, "dist", None)
                    by = f" ({dist.name} {dist.version})" if dist is not None else ""
                    origin = f"entry point {ep.name} = {ep.value}{by}"
                    self.unavailable[ep.name] = Unavailable(ep.name, origin, _error_text(exc))
                    if self.failures is not None:
                        self.failures[ep.name] = _error_text(exc)


class Registry(Generic[T]):
    """Entries of one extension point by name, read like a mapping (``name in r``,
    ``r[name]``, ``list(r)``, :meth:`items`), that discovers its plug-in modules on first
    use; modules add entries with :meth:`add`. :meth:`get` differs from a dict's: an
    unknown name is an error listing the choices.

    Parameters
    ----------
    what : str
        What one entry is, for messages: ``"tracker"``, ``"fixation detector"``.
    package : str, optional
        The package whose every module is a plug-in (``gazelab.gaze.trackers``).
    group : str, optional
        The entry-point group third parties register under (``gazelab.trackers``).
    form : callable, optional
        How an entry is written in :meth:`usage` (default: its name), e.g.
        ``eyetribe[:HOST[:PORT]]``.
    error : exception class
        Raised by :meth:`get` for an unknown name (a :class:`RegistryError` by default).
    """

    def __init__(
        self,
        what: str,
        package: str | None = None,
        *,
        group: str | None = None,
        form: Callable[[T], str] | None = None,
        error: type[Exception] = RegistryError,
        failures: dict[str, str] | None = None,
    ) -> None:
        self.what = what
        self.group = group
        self._form = form
        self._error = error
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self.discovery = Discovery(package, failures, group=group)

    # -- filling ---------------------------------------------------------------------------
    def add(self, name: str, entry: T, *, aliases: tuple[str, ...] = ()) -> T:
        """Register ``entry`` under ``name`` (and ``aliases``); a second, different entry of
        the same name is an error (the same one again, as a module imported twice, is not)."""
        for key in (name, *aliases):
            have = self._entries.get(key) if key == name else self._lookup_raw(key)
            if have is not None and have is not entry and have != entry:
                raise ValueError(f"{self.what} {key!r} is registered twice")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def remove(self, name: str) -> None:
        """Take ``name`` and its aliases out (tests that register a toy entry)."""
        self._entries.pop(name, None)
        for alias in [a for a, n in self._aliases.items() if n == name]:
            del self._aliases[alias]

    def _lookup_raw(self, key: str) -> T | None:
        if key in self._entries:
            return self._entries[key]
        target = self._aliases.get(key)
        return self._entries.get(target) if target is not None else None

    # -- reading ---------------------------------------------------------------------------
    def ensure(self) -> Registry[T]:
        """Import every plug-in module once (thread-safe); returns the registry."""
        self.discovery.ensure()
        return self

    def __getitem__(self, name: str) -> T:
        self.ensure()
        entry = self._lookup_raw(name)
        if entry is None:
            raise KeyError(name)
        return entry

    def __contains__(self, name: object) -> bool:
        self.ensure()
        return isinstance(name, str) and self._lookup_raw(name) is not None

    def __iter__(self) -> Iterator[str]:
        self.ensure()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self.ensure()
        return len(self._entries)

    def names(self, where: Callable[[T], bool] | None = None) -> tuple[str, ...]:
        """The registered names in registration order (the package's modules in file order,
        then entry points), of the entries ``where`` accepts when given."""
        self.ensure()
        return tuple(n for n, e in self._entries.items() if where is None or where(e))

    def choices(self, where: Callable[[T], bool] | None = None) -> Choices:
        """:meth:`names` read each time they are asked for (settings and CLI choices)."""
        return Choices(lambda: self.names(where), self._why_not)

    def _why_not(self, name: str) -> str:
        broken = self.unavailable().get(name)
        return broken.line() if broken is not None else ""

    def all_names(self) -> tuple[str, ...]:
        """:meth:`names` and every alias."""
        self.ensure()
        return (*self._entries, *self._aliases)

    def items(self) -> ItemsView[str, T]:
        self.ensure()
        return dict(self._entries).items()

    def values(self) -> list[T]:
        self.ensure()
        return list(self._entries.values())

    def find(self, name: str) -> T | None:
        """The entry ``name`` (or an alias of it), or ``None``: a dict's ``get``."""
        self.ensure()
        return self._lookup_raw(name)

    def get(self, name: str) -> T:
        """The entry ``name`` (or an alias of it), or ``error`` in one line: the choices
        and the plug-ins that failed to load, with why."""
        self.ensure()
        entry = self._lookup_raw(name)
        if entry is None:
            raise self._error(self.unknown_message(name))
        return entry

    def unknown_message(self, name: str) -> str:
        """``unknown tracker 'x'; choose one of a, b, c`` (+ the failed plug-ins)."""
        return f"unknown {self.what} {name!r}; choose one of {self.usage()}{self.broken()}"

    def broken(self) -> str:
        """``; x: unavailable, module ... failed to load (...)`` for each failed plug-in, or
        nothing: the tail of an error that lists the choices."""
        return "".join(f"; {u.line()}" for u in self.unavailable().values())

    def usage(self) -> str:
        """Every entry as it is written (``form``), comma-separated: for ``--help``."""
        self.ensure()
        form = self._form or (lambda e: getattr(e, "name", "?"))
        return ", ".join(form(e) for e in self._entries.values())

    def unavailable(self) -> dict[str, Unavailable]:
        """Plug-in modules that failed to import, by module or entry-point name."""
        self.ensure()
        return dict(self.discovery.unavailable)

    def listing(self) -> list[str]:
        """One line per entry (``name  help``) and per unavailable plug-in: what ``gazelab
        plugins`` prints."""
        self.ensure()
        width = max((len(n) for n in self._entries), default=0)
        lines = [f"{n:<{width}}  {getattr(e, 'help', None) or getattr(e, 'about', '')}".rstrip()
                 for n, e in self._entries.items()]  # fmt: skip
        lines += [u.line() for u in self.unavailable().values()]
        return lines


class Choices(Sequence[str]):
    """Names read when asked (``in``, iteration, ``len``), never a snapshot taken at import:
    what settings fields and ``argparse`` take as ``choices`` for a registry's names."""

    def __init__(
        self, read: Callable[[], Iterable[str]], why_not: Callable[[str], str] | None = None
    ) -> None:
        self._read = read
        self._why_not = why_not

    def why_not(self, name: str) -> str:
        """Why ``name`` is no choice when a plug-in of that name failed to load (``x:
        unavailable, ... failed to load (...)``), else nothing: for the error's tail."""
        return self._why_not(name) if self._why_not is not None else ""

    def _names(self) -> tuple[str, ...]:
        return tuple(self._read())

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._names() == tuple(other)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return repr(self._names())


EXTENSION_POINTS: dict[str, str] = {
    "trackers": "gazelab.gaze.trackers.registry:TRACKERS",
    "detectors": "gazelab.gaze.fixations:DETECTORS",
    "analyzers": "gazelab.analysis.saliency:ANALYZER_REGISTRY",
    "masks": "gazelab.models.masks:MODEL_MASKS",
    "layouts": "gazelab.models.datasets.registry:LAYOUTS",
    "importers": "gazelab.gaze.importers.base:IMPORTERS",
    "simulators": "gazelab.gaze.trackers.registry:SERVERS",
}
"""Every extension point: its kind (``gazelab plugins KIND``; the entry-point group is
``gazelab.<kind>``, except simulators, which come with the ``gazelab.trackers`` modules)
-> where its :class:`Registry` lives."""


def extension_point(kind: str) -> Registry[Any]:
    """The :class:`Registry` of ``kind`` (a key of :data:`EXTENSION_POINTS`)."""
    if kind not in EXTENSION_POINTS:
        raise RegistryError(f"unknown kind of plug-in {kind!r}; choose one of "
                            f"{', '.join(EXTENSION_POINTS)}")  # fmt: skip
    module, _, attr = EXTENSION_POINTS[kind].partition(":")
    registry: Registry[Any] = getattr(importlib.import_module(module), attr)
    return registry
