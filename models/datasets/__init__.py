"""Image sets: the one :class:`ImageSet` record and the one parser of image specs,
:func:`open_image_set` (docs/settings-and-data.md#data). Each layout (CK+, FER+, AffectNet, folder-per-class,
synthetic) is one module here that registers itself (:mod:`.registry`)."""

from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.models.datasets.registry import (
    layout_usage,
    layouts,
    open_image_set,
    parse_image_spec,
    register_layout,
)

__all__ = [
    "DatasetError",
    "ImageSet",
    "layout_usage",
    "layouts",
    "open_image_set",
    "parse_image_spec",
    "register_layout",
]
