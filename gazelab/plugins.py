"""Registries filled by modules: each module of a package registers itself when imported.

Fixation detectors, trackers, analyzers, mask algorithms and dataset layouts are each a
package whose modules register themselves; :func:`import_modules` imports them all (at
the registry's own import), :class:`Discovery` does it once on first use, thread-safe.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading


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
            failures[module.name] = f"{type(exc).__name__}: {exc}"


class Discovery:
    """:func:`import_modules` of ``package`` once, on the first :meth:`ensure`.

    Thread-safe: a thread asking while another imports waits until every module is
    registered (threads once saw an incomplete registry); a module that asks the
    registry while being imported gets what is registered so far.
    """

    def __init__(self, package: str, failures: dict[str, str] | None = None) -> None:
        self.package = package
        self.failures = failures
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
                import_modules(self.package, self.failures)
                self._done = True
            finally:
                self._running = False
