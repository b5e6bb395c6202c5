"""Fixation detectors, one per module, registered by name (SPEC §4).

Each module in this package defines one detector and registers it with
:func:`gazelab.gaze.fixations.register_detector`; the package imports every module in
it, so adding a detector is one new module here (plus its test) and nothing else:
settings choices, CLI help and :func:`~gazelab.gaze.fixations.detect_fixations` read
the registry.
"""

from __future__ import annotations

from gazelab.plugins import import_modules

import_modules(__name__)
