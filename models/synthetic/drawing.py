"""Drawing one face: the expression geometry of each class, the two drawing styles
(:data:`RENDERERS`) and :func:`render_face`, which samples a face drawn analytically in
the canonical face frame at any resolution, with its diagnostic-region map
(:data:`REGION_WEIGHTS`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES

FEATURES = ("brows", "eyes", "nose", "mouth")

DIAGNOSTIC_FEATURES: dict[str, tuple[str, ...]] = {c: FEATURES for c in CLASSES}
"""The features each class changes: all four, for every class."""

REGION_WEIGHTS: dict[str, dict[str, float]] = {
    "neutral": {"brows": 0.9, "eyes": 1.0, "nose": 0.7, "mouth": 1.0},
    "anger": {"brows": 1.0, "eyes": 0.9, "nose": 0.7, "mouth": 0.8},
    "contempt": {"brows": 0.7, "eyes": 0.7, "nose": 0.7, "mouth": 1.0},
    "disgust": {"brows": 0.8, "eyes": 0.7, "nose": 1.0, "mouth": 0.9},
    "fear": {"brows": 0.9, "eyes": 1.0, "nose": 0.7, "mouth": 0.8},
    "happy": {"brows": 0.7, "eyes": 0.8, "nose": 0.7, "mouth": 1.0},
    "sadness": {"brows": 1.0, "eyes": 0.8, "nose": 0.7, "mouth": 0.9},
    "surprise": {"brows": 0.9, "eyes": 1.0, "nose": 0.7, "mouth": 1.0},
}
"""Weight of each feature's region per class (the most telling features weigh 1): where
a simulated observer looks most, and what saliency is scored against."""

# Expression geometry at full intensity; 0 = neutral for every parameter.
#   brow_raise (+ up), brow_slant (+ inner ends down), brow_asym (+ right brow up),
#   eye_open (multiplier - 1), wrinkles (0..1), nose_flare (nostril width multiplier - 1),
#   mouth_curve (+ corners up), mouth_asym (+ right corner up), mouth_open,
#   mouth_width (multiplier - 1), teeth (0..1)
_EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "anger": {
        "brow_raise": -0.04,
        "brow_slant": 0.08,
        "eye_open": -0.4,
        "nose_flare": 0.5,
        "wrinkles": 0.35,
        "mouth_width": -0.1,
        "mouth_curve": -0.02,
        "mouth_open": 0.04,
        "teeth": 1.0,  # clenched, bared teeth
    },
    "contempt": {
        "brow_asym": 0.05,
        "eye_open": -0.25,
        "nose_flare": -0.35,
        "mouth_asym": 0.09,
        "mouth_open": 0.02,
    },
    "disgust": {
        "brow_raise": -0.025,
        "brow_slant": 0.03,
        "eye_open": -0.25,
        "wrinkles": 1.0,
        "nose_flare": 0.3,
        "mouth_open": 0.035,
        "mouth_curve": -0.02,
    },
    "fear": {
        "brow_raise": 0.06,
        "brow_slant": -0.06,
        "eye_open": 0.5,
        "nose_flare": 0.25,
        "mouth_open": 0.04,
        "mouth_width": 0.2,
    },
    "happy": {
        "brow_raise": -0.015,
        "eye_open": -0.4,
        "nose_flare": 0.35,
        "mouth_curve": 0.085,
        "mouth_width": 0.2,
        "teeth": 1.0,
        "mouth_open": 0.03,
    },
    "sadness": {
        "brow_slant": -0.08,
        "brow_raise": 0.01,
        "eye_open": -0.3,
        "nose_flare": -0.3,
        "mouth_curve": -0.08,
        "mouth_open": 0.02,
    },
    "surprise": {
        "brow_raise": 0.09,
        "eye_open": 0.7,
        "nose_flare": -0.25,
        "mouth_open": 0.08,
        "mouth_width": -0.4,
    },
}
"""Every class moves every feature; the mouth opens (a little) for all but neutral, so the
mouth's dark interior alone does not point at the few open-mouthed classes."""


def _soft(signed_dist: NDArray[np.float64], px: float) -> NDArray[np.float64]:
    """Anti-aliased coverage of a shape from its signed distance (negative inside)."""
    return np.clip(0.5 - signed_dist / px, 0.0, 1.0)


def _ellipse_sd(
    u: NDArray[np.float64], v: NDArray[np.float64], cu: float, cv: float, a: float, b: float
) -> NDArray[np.float64]:
    """Approximate signed distance to an ellipse (exact for circles)."""
    r = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return (r - 1.0) * min(a, b)


def _curve_sd(
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    u0: float,
    u1: float,
    f: NDArray[np.float64],
    slope: NDArray[np.float64],
    half_thick: float,
) -> NDArray[np.float64]:
    """Signed distance to a thick curve ``v = f(u)`` for ``u0 <= u <= u1`` with round ends."""
    d = np.abs(v - f) / np.sqrt(1.0 + slope**2)
    du = np.maximum(np.maximum(u0 - u, u - u1), 0.0)
    return np.sqrt(d**2 + du**2) - half_thick


RENDERERS = ("a", "b")
"""Two drawing styles, for cross-dataset experiments: ``a`` (the default) and ``b`` (other
identity ranges, darker low-contrast rendering with a softer optic: gamma 1.6, contrast
0.7, Gaussian blur of 0.6 % of the side)."""


def _face_params(
    label: int, rng: np.random.Generator, irng: np.random.Generator | None = None
) -> dict[str, float]:
    """Expression (from ``rng``), identity (face shape, features, skin, hair: from ``irng``,
    a subject's own generator, or ``rng``) and pose / light / noise (from ``rng``)."""
    expr = _EXPRESSIONS[CLASSES[label]]
    intensity = rng.uniform(0.55, 1.0)
    p = {k: intensity * v for k, v in expr.items()}
    ir = rng if irng is None else irng
    identity = {
        "face_a": ir.uniform(0.56, 0.66),
        "face_b": ir.uniform(0.74, 0.84),
        "eye_dx": ir.uniform(0.22, 0.28),
        "eye_v": ir.uniform(-0.17, -0.09),
        "eye_a": ir.uniform(0.09, 0.12),
        "eye_b": ir.uniform(0.045, 0.06),
        "brow_gap": ir.uniform(0.09, 0.13),
        "brow_thick": ir.uniform(0.018, 0.03),
        "nose_len": ir.uniform(0.17, 0.23),
        "mouth_v": ir.uniform(0.34, 0.42),
        "mouth_a": ir.uniform(0.16, 0.21),
        "skin": ir.uniform(0.55, 0.85),
        "hair": ir.uniform(0.05, 0.45),
        "hair_line": ir.uniform(-0.62, -0.5),
        "bg": rng.uniform(0.15, 0.9),
        "rot": math.radians(rng.uniform(-10.0, 10.0)),
        "scale": rng.uniform(0.88, 1.04),
        "shift_u": rng.uniform(-0.06, 0.06),
        "shift_v": rng.uniform(-0.05, 0.05),
        "light_angle": rng.uniform(0, 2 * math.pi),
        "light": rng.uniform(0.0, 0.25),
        "noise": rng.uniform(0.01, 0.05),
        "tint_r": rng.uniform(0.95, 1.1),
        "tint_b": rng.uniform(0.85, 1.0),
    }
    return identity | p


def render_face(
    label: int,
    size: int,
    seed: int | np.random.SeedSequence,
    *,
    rgb: bool = False,
    identity: int | np.random.SeedSequence | None = None,
    renderer: str = "a",
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Render one face of class ``label`` at ``size``×``size`` px.

    ``identity``: the seed of a subject, whose face shape, features, skin and hair are then
    shared by all its faces (``None``: drawn per face). ``renderer``: one of
    :data:`RENDERERS`.

    Returns ``(image, regions)``: uint8 ``(size, size)`` (or ``(size, size, 3)``
    with ``rgb``) and float32 ``(size, size)`` diagnostic regions in [0, 1].
    Deterministic for a given ``(label, seed)``, at every size.
    """
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label {label} is outside 0..{len(CLASSES) - 1}")
    if size < 8:
        raise ValueError(f"size {size} is too small; use at least 8 px")
    if renderer not in RENDERERS:
        raise ValueError(f"renderer {renderer!r} is not one of {RENDERERS}")
    rng = np.random.default_rng(seed)
    irng = None if identity is None else np.random.default_rng(identity)
    p = _face_params(label, rng, irng)
    if renderer == "b":  # another identity pool: wider, lower-set faces, lighter hair
        p["face_a"] += 0.04
        p["eye_v"] += 0.03
        p["mouth_v"] -= 0.02
        p["hair"] += 0.3
    g = p.get

    # Canonical coordinates of every pixel centre, through the pose transform.
    coords = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    xx, yy = xx - p["shift_u"], yy - p["shift_v"]
    c, s = math.cos(p["rot"]), math.sin(p["rot"])
    u = (c * xx + s * yy) / p["scale"]
    v = (-s * xx + c * yy) / p["scale"]
    px = 2.0 / size / p["scale"] * 1.5  # anti-aliasing width, canonical units

    # Background with a vertical gradient, then hair and face.
    img = np.full((size, size), p["bg"]) + 0.1 * yy
    face_sd = _ellipse_sd(u, v, 0.0, 0.0, p["face_a"], p["face_b"])
    hair = _soft(np.maximum(face_sd - 0.05, v - p["hair_line"]), px)
    img = img * (1 - hair) + p["hair"] * hair
    face = _soft(face_sd, px)
    light = 1.0 + p["light"] * (math.cos(p["light_angle"]) * u + math.sin(p["light_angle"]) * v)
    skin = p["skin"] * light
    img = img * (1 - face) + skin * face
    region_maps: dict[str, NDArray[np.float64]] = {}

    # Eyes: sclera, iris; openness scales the height.
    eye_b = p["eye_b"] * (1.0 + g("eye_open", 0.0))
    eyes_cov = np.zeros_like(u)
    for side in (-1.0, 1.0):
        cu = side * p["eye_dx"]
        sclera = _soft(_ellipse_sd(u, v, cu, p["eye_v"], p["eye_a"], eye_b), px)
        iris_r = min(0.045, eye_b * 0.95)
        iris = _soft(_ellipse_sd(u, v, cu, p["eye_v"], iris_r, iris_r), px) * sclera
        img = img * (1 - sclera) + 0.95 * sclera
        img = img * (1 - iris) + 0.08 * iris
        eyes_cov = np.maximum(eyes_cov, sclera)
        # eyelid line above the eye
        lid = _soft(np.abs(_ellipse_sd(u, v, cu, p["eye_v"], p["eye_a"], eye_b)) - 0.006, px)
        img = img * (1 - lid * 0.7) + 0.1 * lid * 0.7
    # the regions are placed by identity and pose only (the neutral geometry), large
    # enough for every expression's feature: their shape never tells the class
    region_maps["eyes"] = _blob(
        u,
        v,
        [(-p["eye_dx"], p["eye_v"]), (p["eye_dx"], p["eye_v"])],
        p["eye_a"] * 1.6,
        max(p["eye_b"], 0.04) * 2.6,
    )

    # Brows: thick lines above the eyes; raise moves them up (asym: the right one only),
    # slant tilts the inner ends.
    brow_cov = np.zeros_like(u)
    brow_centres = []
    for side in (-1.0, 1.0):
        cu = side * p["eye_dx"]
        raise_ = g("brow_raise", 0.0) + (g("brow_asym", 0.0) if side > 0 else 0.0)
        base_v = p["eye_v"] - p["brow_gap"] - raise_ - (eye_b - p["eye_b"]) * 0.5
        # t = -1 at the inner end, +1 at the outer end
        t = (u - cu) * side / p["eye_a"] / 1.2
        slant = g("brow_slant", 0.0)
        f = base_v + slant * (-t) * 0.5 + 0.02 * t**2
        slope = side * (-slant * 0.5 + 0.04 * t) / (p["eye_a"] * 1.2)
        u0, u1 = cu - p["eye_a"] * 1.2, cu + p["eye_a"] * 1.2
        brow = _soft(_curve_sd(u, v, u0, u1, f, slope, p["brow_thick"]), px) * face
        img = img * (1 - brow) + 0.12 * brow
        brow_cov = np.maximum(brow_cov, brow)
        brow_centres.append((cu, p["eye_v"] - p["brow_gap"] - 0.015))
    region_maps["brows"] = _blob(u, v, brow_centres, p["eye_a"] * 1.7, 0.085)

    # Nose: a shaded ridge and nostrils (flare widens them); wrinkles across the bridge.
    nose_top, nose_bot = p["eye_v"] + 0.03, p["eye_v"] + 0.03 + p["nose_len"]
    ridge = _soft(
        _curve_sd(v, u, nose_top, nose_bot, np.full_like(u, 0.035), np.zeros_like(u), 0.006), px
    )
    img = img * (1 - 0.5 * ridge) + 0.2 * 0.5 * ridge
    for side in (-1.0, 1.0):
        flare = 1.0 + g("nose_flare", 0.0)
        nostril = _soft(
            _ellipse_sd(u, v, side * (0.03 + 0.012 * flare), nose_bot, 0.022 * flare, 0.012), px
        )
        img = img * (1 - nostril) + 0.15 * nostril
    wr = g("wrinkles", 0.0)
    if wr > 0:
        for k in range(3):
            wv = nose_top + 0.02 + 0.035 * k
            f = wv + 0.15 * u**2
            line = _soft(_curve_sd(u, v, -0.07, 0.07, f, 0.3 * u, 0.006), px) * face
            img = img * (1 - wr * 0.8 * line) + 0.15 * wr * 0.8 * line
    region_maps["nose"] = _blob(u, v, [(0.0, (nose_top + nose_bot) / 2)], 0.1, p["nose_len"] * 0.7)

    # Mouth: a curved line; corners move with curve/asymmetry; opening shows a dark
    # interior (and teeth for happy).
    ma = p["mouth_a"] * (1.0 + g("mouth_width", 0.0))
    mv = p["mouth_v"]
    curve, asym, mopen = g("mouth_curve", 0.0), g("mouth_asym", 0.0), g("mouth_open", 0.0)
    t = np.clip(u / ma, -1.5, 1.5)
    corner_lift = curve * t**2 + asym * np.clip(t, 0, None) ** 2
    f_mid = mv - corner_lift
    slope = -(2 * curve * t + 2 * asym * np.clip(t, 0, None)) / ma
    if mopen > 0.005:
        upper = f_mid - mopen * 0.5 * (1 - t**2).clip(0)
        lower = f_mid + mopen * 0.5 * (1 - t**2).clip(0)
        inside = _soft(np.maximum(upper - v, v - lower), px) * (np.abs(u) <= ma)
        img = img * (1 - inside) + 0.05 * inside
        teeth = g("teeth", 0.0)
        if teeth > 0:
            tband = inside * _soft(v - (upper + mopen * 0.45), px)
            img = img * (1 - tband * teeth) + 0.92 * tband * teeth
        for edge in (upper, lower):
            lip = _soft(_curve_sd(u, v, -ma, ma, edge, slope, 0.01), px)
            img = img * (1 - lip) + 0.25 * lip
    else:
        lip = _soft(_curve_sd(u, v, -ma, ma, f_mid, slope, 0.013), px)
        img = img * (1 - lip) + 0.22 * lip
    region_maps["mouth"] = _blob(u, v, [(0.0, mv)], p["mouth_a"] * 1.5, 0.13)

    img = img + rng.normal(0.0, p["noise"], img.shape)
    if renderer == "b":
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(np.clip(img, 0, 1), 0.006 * size) ** 1.6
        img = 0.7 * (img - 0.5) + 0.45
    regions = np.zeros_like(u)
    weights = REGION_WEIGHTS[CLASSES[label]]
    for feat in DIAGNOSTIC_FEATURES[CLASSES[label]]:
        regions = np.maximum(regions, weights[feat] * region_maps[feat])
    if rgb:
        tint = np.array([p["tint_r"], 1.0, p["tint_b"]])
        rgb_img = img[..., None] * np.where(face[..., None] > 0.5, tint, 1.0)
        out = np.clip(rgb_img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    else:
        out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, regions.astype(np.float32)


def _blob(
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    centres: list[tuple[float, float]],
    a: float,
    b: float,
) -> NDArray[np.float64]:
    """Soft elliptical regions (1 inside, falling to 0 at the rim) around feature centres."""
    out = np.zeros_like(u)
    for cu, cv in centres:
        r2 = ((u - cu) / a) ** 2 + ((v - cv) / b) ** 2
        out = np.maximum(out, np.clip(1.5 - r2, 0.0, 1.0))
    return out
