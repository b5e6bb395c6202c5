"""gazelab: eye-tracking studies of facial-expression recognition.

The import package maps the repository's root folders onto sub-packages
(``gazelab.gaze`` -> ``gaze/``, ...; see ``pyproject.toml``). This module stays
thin on purpose: importing ``gazelab`` must not pull in Qt or TensorFlow.
"""

from __future__ import annotations

__version__ = "0.1.0"

CLASSES: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "sadness",
    "surprise",
)
"""The 8 CK+ expression classes, in CK+ emotion-code order (docs/running-a-session.md#the-protocol)."""

__all__ = ["CLASSES", "__version__"]
