"""Fixation detectors, one per module, registered by name (``docs/fixations.md``).

Each module in this package defines one detector and registers it with
:func:`gazelab.gaze.fixations.register_detector`; the registry
(:data:`~gazelab.gaze.fixations.DETECTORS`) imports every module here the first time it
is read, so adding a detector is one new module here (plus its test) and nothing else:
settings choices, CLI help and :func:`~gazelab.gaze.fixations.detect_fixations` read
the registry (``docs/extending.md``).
"""
