"""Sets of synthetic faces: what is decided before drawing (:func:`face_plan`: labels, ids,
subjects, each face's seeds), the drawn batch (:func:`synthetic_faces`) and its files
(:func:`write_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.fileio import atomic_open
from gazelab.models.synthetic.drawing import render_face


@dataclass(frozen=True)
class SyntheticFaces:
    """A batch of synthetic faces.

    Attributes
    ----------
    images : (N, H, W) or (N, H, W, 3) uint8
    labels : (N,) int64, index into :data:`gazelab.CLASSES`
    regions : (N, H, W) float32 in [0, 1], diagnostic regions
    ids : list of str, ``synthetic-<seed>-<index>``
    subjects : list of str, the identity of each face (``s<seed>-<k>``) when drawn from a
        pool of subjects, else one identity per face (``''``)
    """

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    regions: NDArray[np.float32]
    ids: list[str]
    subjects: list[str] = field(default_factory=list)


def synthetic_faces(
    n: int,
    size: int = 64,
    seed: int = 0,
    *,
    rgb: bool = False,
    balanced: bool = True,
    subjects: int | None = None,
    renderer: str = "a",
) -> SyntheticFaces:
    """``n`` faces, classes cycled (``balanced``) or drawn at random, deterministic by ``seed``.

    ``subjects``: draw the faces from a pool of that many identities (face ``i`` belongs to
    subject ``i mod subjects``; the pool depends on ``seed``), for subject-independent
    splits. ``renderer``: ``"a"`` or ``"b"`` (:data:`RENDERERS`).
    """
    plan = face_plan(n, seed, balanced=balanced, subjects=subjects)
    shape = (n, size, size, 3) if rgb else (n, size, size)
    images = np.empty(shape, dtype=np.uint8)
    regions = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        images[i], regions[i] = plan.render(i, size, rgb=rgb, renderer=renderer)
    return SyntheticFaces(
        images=images, labels=plan.labels, regions=regions, ids=plan.ids, subjects=plan.subjects
    )


@dataclass(frozen=True)
class FacePlan:
    """What :func:`synthetic_faces` decides before drawing: labels, ids, subjects and each
    face's seeds, so that one face can be rendered alone (:meth:`render`), identical to
    its rendering in the whole set (an image set of 1 000 faces opens without drawing)."""

    labels: NDArray[np.int64]
    ids: list[str]
    subjects: list[str]
    seeds: list[np.random.SeedSequence]
    identities: list[np.random.SeedSequence | None]

    def render(
        self, i: int, size: int, *, rgb: bool = False, renderer: str = "a"
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        return render_face(int(self.labels[i]), size, self.seeds[i], rgb=rgb,
                           identity=self.identities[i], renderer=renderer)  # fmt: skip


def face_plan(
    n: int, seed: int = 0, *, balanced: bool = True, subjects: int | None = None
) -> FacePlan:
    """The labels, ids, subjects and per-face seeds of ``synthetic_faces(n, seed=seed)``."""
    if subjects is not None and subjects < 1:
        raise ValueError(f"subjects = {subjects} must be >= 1")
    if n < 0:
        raise ValueError(f"n = {n} must be >= 0")
    children = np.random.SeedSequence(seed).spawn(n + 1)
    label_rng = np.random.default_rng(children[0])
    if balanced:
        labels = np.arange(n, dtype=np.int64) % len(CLASSES)
        label_rng.shuffle(labels)
    else:
        labels = label_rng.integers(0, len(CLASSES), size=n).astype(np.int64)
    pool = [np.random.SeedSequence((seed, 7919, k)) for k in range(subjects)] if subjects else []
    return FacePlan(
        labels=labels,
        ids=[f"synthetic-{seed}-{i:05d}" for i in range(n)],
        subjects=[f"s{seed}-{i % subjects:03d}" if subjects else "" for i in range(n)],
        seeds=children[1:],
        identities=[pool[i % subjects] if subjects else None for i in range(n)],
    )


def face_seed(seed: int, index: int, n: int) -> np.random.SeedSequence:
    """Seed sequence of face ``index`` of ``synthetic_faces(n, seed=seed)``, to re-render it."""
    return np.random.SeedSequence(seed).spawn(n + 1)[index + 1]


def write_folder(faces: SyntheticFaces, out: str | Path) -> Path:
    """Write faces in the folder-per-class layout (``OUT/<class>/<id>.png``) + ``regions.npz``."""
    from PIL import Image

    out = Path(out)
    for img, lab, fid in zip(faces.images, faces.labels, faces.ids, strict=True):
        d = out / CLASSES[int(lab)]
        d.mkdir(parents=True, exist_ok=True)
        with atomic_open(d / f"{fid}.png") as f:
            Image.fromarray(img).save(f, format="PNG")
    with atomic_open(out / "regions.npz") as f:
        np.savez_compressed(f, ids=np.array(faces.ids), regions=faces.regions, labels=faces.labels)
    return out
