"""Using an export: the masks of given images, resized (nearest) to them, applied to a
batch (:func:`masked_images`) or paired with training images (:func:`triples`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from gazelab.models.export.files import ExportError, MaskSet


def masked_images(
    images: NDArray[np.float32], ids: Iterable[str], masks: MaskSet
) -> NDArray[np.float32]:
    """``I ⊙ M`` for a batch (``(N, H, W, C)``, model input) by id; masks are resized
    (nearest) when the export's size differs from the images'."""
    from gazelab.models.masks import apply_mask

    out = np.empty_like(images)
    for k, mask in enumerate(_masks_for(ids, masks, images.shape[1:3])):
        out[k] = apply_mask(images[k], mask)
    return out


def _masks_for(
    ids: Iterable[str], masks: MaskSet, shape: tuple[int, ...]
) -> Iterator[NDArray[np.bool_]]:
    """The export's mask of each id, resized (nearest) to ``shape``; a missing id is an error."""
    index = {iid: k for k, iid in enumerate(masks.ids)}
    for iid in ids:
        if iid not in index:
            raise ExportError(f"no mask for image {iid!r} in this export")
        m = masks.masks[index[iid]]
        yield m if m.shape == tuple(shape) else resize_mask(m, shape)


def resize_mask(mask: NDArray[np.bool_], shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Nearest-neighbour resize of a mask to ``(H, W)``."""
    from PIL import Image

    im = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
    return np.asarray(im.resize((int(shape[1]), int(shape[0])), Image.Resampling.NEAREST)) > 127


def triples(
    images: NDArray[np.float32], labels: Sequence[int], ids: Sequence[str], masks: MaskSet
) -> Iterable[tuple[NDArray[np.float32], NDArray[np.bool_], int]]:
    """(image, mask, label) per training image, the mask resized (nearest) to the image;
    an image without a mask in the export is an error naming it."""
    for k, m in enumerate(_masks_for(ids, masks, images.shape[1:3])):
        yield images[k], m, int(labels[k])
