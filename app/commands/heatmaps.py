"""``gazelab heatmaps``: fixations and human heatmaps of a stored session, in the stimulus
frame (the centred square, or an imported image's rectangle on screen) and in image pixels
(with the kernel of each trial's placement: an ellipse on non-square pixels)."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gazelab.app.commands import max_pixels
from gazelab.errors import GazelabError
from gazelab.models.datasets.base import ImageSet


class HeatmapsError(GazelabError, ValueError):
    """The session's images cannot be found or rebuilt; the message says which to give."""


def session_image_index(
    order: Sequence[str], images: ImageSet, *, by_stem: bool = False
) -> dict[str, int]:
    """Where every image id of a session (``order``) is in ``images``, matched by id;
    with ``by_stem`` an id may also match a file named by it (``happy/<id>.png``, as
    ``gazelab synthetic`` writes the faces of a ``synthetic:`` session)."""
    index = {iid: k for k, iid in enumerate(images.ids)}
    if by_stem:
        for k, iid in enumerate(images.ids):
            index.setdefault(Path(iid).stem, k)
    missing = [i for i in order if i not in index]
    if missing:
        raise HeatmapsError(
            f"{len(missing)} image id(s) of the session are not in {images.spec} "
            f"(first: {missing[0]!r}); give the images the session was run with"
        )
    return {i: index[i] for i in order}


def session_image_shapes(
    order: Sequence[str], images: ImageSet, *, by_stem: bool = False
) -> dict[str, tuple[int, int]]:
    """``(H, W)`` of every image id of a session in ``images`` (see
    :func:`session_image_index`), one image decoded at a time."""
    index = session_image_index(order, images, by_stem=by_stem)
    shapes = {i: images.image(k).shape[:2] for i, k in index.items()}
    return {i: (int(h), int(w)) for i, (h, w) in shapes.items()}


class DecodedOnce(Mapping[str, tuple[int, int]]):
    """``(H, W)`` of a session's images by id, each image decoded once, when its size is
    first asked for; the pixels are kept until :meth:`pixels` has given them for every
    trial that shows the image (``order``: the session's image ids, a repeat counted)."""

    def __init__(self, images: ImageSet, index: Mapping[str, int], order: Sequence[str]) -> None:
        self.images, self.index = images, index
        self.shapes: dict[str, tuple[int, int]] = {}
        self._pixels: dict[str, Any] = {}
        self._uses = Counter(order)

    def __getitem__(self, image_id: str) -> tuple[int, int]:
        if image_id not in self.shapes:
            img = self.images.image(self.index[image_id])
            self._pixels[image_id] = img
            self.shapes[image_id] = (int(img.shape[0]), int(img.shape[1]))
        return self.shapes[image_id]

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def pixels(self, image_id: str) -> Any:
        """The decoded image (decoded now if its size was not asked for), let go after its
        last use."""
        if image_id not in self._pixels:
            self.shapes.pop(image_id, None)
            self[image_id]
        img = self._pixels[image_id]
        self._uses[image_id] -= 1
        if self._uses[image_id] <= 0:
            del self._pixels[image_id]
        return img


def cmd_heatmaps(args: argparse.Namespace) -> int:
    """Heatmaps of one session on the images it stored (its image spec), or on ``--images``
    (any image spec, or a PATH in the ``--dataset`` layout)."""
    import numpy as np
    from PIL import Image

    from gazelab.analysis.human import iter_trial_gaze
    from gazelab.analysis.overlays import heat_overlay, with_legend
    from gazelab.analysis.report import HUMAN_COLOURS
    from gazelab.analysis.scoring import annotator_gaze
    from gazelab.annotation.store import SessionStore
    from gazelab.fileio import atomic_open, safe_filename
    from gazelab.models.datasets.registry import as_image_spec, open_image_set

    limit = max_pixels(args)
    # a mistyped --store and a wrong --images are both named, in one line
    problems: list[GazelabError] = []
    store: SessionStore | None = None
    images = None
    try:
        store = SessionStore(args.store)
    except GazelabError as exc:
        problems.append(exc)
    if args.images:
        try:
            images = open_image_set(as_image_spec(args.images, args.dataset), max_pixels=limit)
        except GazelabError as exc:
            problems.append(exc)
    if problems or store is None:
        if store is not None:
            store.close()
        if len(problems) == 1:
            raise problems[0]
        raise GazelabError("; ".join(str(e) for e in problems))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with store:
        rec = store.session(args.session)
        if images is None:
            try:
                images = open_image_set(rec.image_source, max_pixels=limit)
            except GazelabError as exc:
                raise HeatmapsError(
                    f"session {rec.id}: its images cannot be rebuilt from its image source "
                    f"{rec.image_source!r} ({exc}); give them with --images"
                ) from exc
        try:
            index = session_image_index(rec.stimulus_order, images, by_stem=bool(args.images))
        except HeatmapsError as exc:
            raise HeatmapsError(f"session {rec.id}: {exc}") from None
        # each image decoded once: for its size as its trial comes, then for its overlay
        decoded = DecodedOnce(images, index, rec.stimulus_order)
        settings = None  # the session's own
        if getattr(args, "fixations", None):
            import dataclasses

            from gazelab.settings import Settings

            own = Settings.from_toml(rec.settings_toml, source=f"session {rec.id}")
            settings = dataclasses.replace(
                own, fixations=dataclasses.replace(own.fixations, method=args.fixations)
            )
            print(f"fixations: {args.fixations} (the session recorded {own.fixations.method})")
        arrays = {}
        image_maps = {}
        n = 0
        for t in iter_trial_gaze(store, args.session, decoded, settings):
            arrays[t.image_id] = t.heatmap.astype(np.float32)
            # the overlay people read: the heatmap in image pixels (the one builder of
            # compare and the viewer, the trial's own kernel) over the image, with its
            # contour and a legend naming the participant; the NPZs keep the bare maps
            img = np.asarray(decoded.pixels(t.image_id))
            base = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
            colour = HUMAN_COLOURS[0]
            gaze = annotator_gaze(t, rec.participant, rec.id, None, "events")
            image_maps[t.image_id] = gaze.heatmap_or_build()
            over = heat_overlay(base, image_maps[t.image_id], colour)
            n_fix = len(t.fixations["onset_ms"])
            over = with_legend(over, [(f"{rec.participant} ({n_fix} fixations)", colour)])
            # ids are paths (``happy/x.png``, even ``../x``): the name must stay inside --out
            with atomic_open(out / f"session{args.session}_{safe_filename(t.image_id)}.png") as f:
                Image.fromarray(over).save(f, format="PNG")
            print(f"{t.image_id}: {n_fix} fixations")
            n += 1
    with atomic_open(out / f"session{args.session}_heatmaps.npz") as f:
        np.savez_compressed(f, **arrays)
    with atomic_open(out / f"session{args.session}_heatmaps_image.npz") as f:
        np.savez_compressed(f, **image_maps)
    print(f"wrote {n} heatmaps to {out}: overlays on the images (PNG), the "
          "stimulus-frame maps (float32 NPZ) and the image-pixel maps (float64 NPZ)")  # fmt: skip
    return 0
