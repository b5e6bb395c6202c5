"""Mask export (docs/algorithms.md#masks, ``gazelab masks``): PNGs + one compressed NPZ + a manifest.

Layout of an export folder::

    export.json        what was asked (algorithm, parameters, size, source) and, at the
                       end, ``complete: true`` with the counts
    masks/<id>.png     one 8-bit PNG per image: 255 = keep, 0 = zeroed
    masks.npz          every mask, boolean (H, W), keyed by image id
    manifest.csv       image_id, dataset, algorithm, parameters (JSON), annotator, model,
                       fallback, mask_sha256, image_sha256, png

Crash safety: each PNG, the NPZ and the manifest are written to a temporary
name and renamed, so nothing half-written is ever visible; the manifest and
the NPZ appear only when every mask is done. Re-running the same export skips
the masks whose PNG exists (they are read back, not recomputed), so an
interrupted export, restarted, ends with the same files as an uninterrupted
one. Re-running with other parameters into the same folder is refused.

Byte for byte: the PNGs, ``manifest.csv`` and ``masks.npz`` (written with fixed zip
entry times) of a resumed export equal an uninterrupted one's; ``export.json``
differs in one documented field only, ``reused`` (how many masks this last run read
back instead of computing: 0 for an uninterrupted export). Temporaries left by a
killed export are removed when the next one starts.

The package holds one concept per module: :mod:`.files` (the export folder, written and
read back), :mod:`.jobs` (the masks to export, from relevance or from gaze),
:mod:`.apply` (an export's masks applied to images) and :mod:`.commands` (whole exports,
as ``gazelab masks`` runs them). Import from here:
``from gazelab.models.export import load_masks``.
"""

from __future__ import annotations

from gazelab.models.export.apply import (
    masked_images,
    resize_mask,
    triples,
)
from gazelab.models.export.commands import (
    ExportSummary,
    export_image_set_masks,
    export_project_masks,
    image_set_jobs,
)
from gazelab.models.export.files import (
    MANIFEST_COLUMNS,
    ExportError,
    MaskJob,
    MaskSet,
    export_masks,
    image_sha256,
    load_masks,
    mask_sha256,
    npz_bytes,
)
from gazelab.models.export.jobs import (
    jobs_from_comparison,
    jobs_from_relevance,
    relevance_kernel,
)

__all__ = [
    "ExportError",
    "ExportSummary",
    "MANIFEST_COLUMNS",
    "MaskJob",
    "MaskSet",
    "export_image_set_masks",
    "export_masks",
    "export_project_masks",
    "image_set_jobs",
    "image_sha256",
    "jobs_from_comparison",
    "jobs_from_relevance",
    "load_masks",
    "mask_sha256",
    "masked_images",
    "npz_bytes",
    "relevance_kernel",
    "resize_mask",
    "triples",
]
