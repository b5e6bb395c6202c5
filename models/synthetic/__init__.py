"""Procedural synthetic faces for the 8 expression classes, with diagnostic-region maps.

Stands in for licensed datasets (CK+, FER+, AffectNet) in the demo, tests and
benchmarks (docs/settings-and-data.md#data). Each face is drawn analytically in a canonical face frame
(``u`` right, ``v`` down, face centre at 0, unit = half the image side) and
sampled at any resolution, so one seed gives the same face at 64 or 1200 px.

As on real faces, every expression uses the same features — brows, eyes, nose and
mouth — and differs in their *shapes*: brows (raise, inner slant, one-sided raise),
eyes (openness), nose (wrinkles across the bridge, nostril flare) and mouth
(curvature, corner asymmetry, opening, width, teeth), at a random intensity. Every
class changes every feature, so no feature's place tells the class. Identity (face
shape, feature placement, skin tone, hair), pose (rotation, scale, shift), lighting
and noise vary per face.

The *diagnostic regions* of a face are its four feature areas, placed by identity and
pose only (never by the expression: a binary region mask says nothing about the
class), weighted per class by :data:`REGION_WEIGHTS` — the features that carry the
most of that expression (the mouth for happy, the nose for disgust, ...) weigh 1 — so
gaze drawn from them and saliency scored against them still differ by class. They
come as a ``(H, W)`` float map in [0, 1].

The package holds one concept per module: :mod:`.drawing` (one face and its regions),
:mod:`.sets` (sets of faces, their plan and files) and :mod:`.spec` (the
``synthetic:...`` image-source spec). Import from here:
``from gazelab.models.synthetic import synthetic_faces``.

Examples
--------
>>> faces = synthetic_faces(16, size=64, seed=1)
>>> faces.images.shape, faces.regions.shape
((16, 64, 64), (16, 64, 64))
"""

from __future__ import annotations

from gazelab.models.synthetic.drawing import (
    DIAGNOSTIC_FEATURES,
    FEATURES,
    REGION_WEIGHTS,
    RENDERERS,
    render_face,
)
from gazelab.models.synthetic.sets import (
    FacePlan,
    SyntheticFaces,
    face_plan,
    face_seed,
    synthetic_faces,
    write_folder,
)
from gazelab.models.synthetic.spec import (
    MAX_SYNTHETIC_FACES,
    MAX_SYNTHETIC_SIZE,
    SyntheticSpec,
    SyntheticSpecError,
    parse_synthetic_spec,
)

__all__ = [
    "DIAGNOSTIC_FEATURES",
    "FEATURES",
    "FacePlan",
    "MAX_SYNTHETIC_FACES",
    "MAX_SYNTHETIC_SIZE",
    "REGION_WEIGHTS",
    "RENDERERS",
    "SyntheticFaces",
    "SyntheticSpec",
    "SyntheticSpecError",
    "face_plan",
    "face_seed",
    "parse_synthetic_spec",
    "render_face",
    "synthetic_faces",
    "write_folder",
]
