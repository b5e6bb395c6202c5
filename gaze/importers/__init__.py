"""Importers of other trackers' recordings, one module per format, registered by name.

Each format module (``eyelink``, ``tobii``, ``gazepoint``, ``csv``, ``bids``) registers a
pure parser with :func:`~gazelab.gaze.importers.base.register_importer`; the registry
(:data:`~gazelab.gaze.importers.base.IMPORTERS`) imports every module here, and those
installed packages name under the ``gazelab.importers`` entry point, the first time it is
read, so a new format is one new module (plus its test).
:func:`~gazelab.gaze.importers.ingest.import_file` writes what a parser read into a
store (``docs/import.md``).
"""

from __future__ import annotations

from gazelab.gaze.importers.base import (
    IMPORTERS,
    CsvMapping,
    ImportedRecording,
    ImportFormatError,
    ImportOptions,
    Rect,
    Trial,
    register_importer,
)

__all__ = [
    "IMPORTERS",
    "CsvMapping",
    "ImportFormatError",
    "ImportOptions",
    "ImportedRecording",
    "Rect",
    "Trial",
    "importer_names",
    "register_importer",
]


def importer_names() -> tuple[str, ...]:
    """The registered import formats (CLI choices)."""
    return tuple(sorted(IMPORTERS))
