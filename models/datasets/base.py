"""The record every dataset loader returns, and label-name normalisation (docs/settings-and-data.md#data)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab import CLASSES
from gazelab.errors import GazelabError, GazelabWarning
from gazelab.settings import StimulusSettings


class DatasetError(GazelabError, ValueError):
    """A dataset folder is missing a file or has a malformed one; the message names it."""


SYNONYMS: dict[str, str] = {
    "neutral": "neutral",
    "neutrality": "neutral",
    "none": "neutral",
    "anger": "anger",
    "angry": "anger",
    "mad": "anger",
    "contempt": "contempt",
    "contemptuous": "contempt",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sadness",
    "sad": "sadness",
    "surprise": "surprise",
    "surprised": "surprise",
}
"""Words (and dataset folder names) that mean each of the 8 classes
(docs/running-a-session.md#the-protocol)."""


def class_of(word: str) -> str | None:
    """The class a word names (``'Happiness'`` -> ``'happy'``), or ``None``."""
    return SYNONYMS.get(word.strip().lower())


class Labels:
    """One class index per image (into :data:`gazelab.CLASSES`), read by position or by id.

    Array-like by position (``labels[3]``, ``labels[index_array]``, ``np.asarray(labels)``,
    iteration, ``len``) as a dataset's label vector is, and mapping-like by image id
    (``labels["happy/1.png"]``, ``labels.get(image_id)``, ``image_id in labels``) as a
    session's images are looked up: the one record serves both.
    """

    __slots__ = ("_by_id", "_ids", "_positions", "values")

    def __init__(self, values: ArrayLike, ids: Sequence[str]) -> None:
        self.values: NDArray[np.int64] = np.asarray(values, dtype=np.int64).reshape(-1)
        if len(self.values) != len(ids):
            raise ValueError("ids, labels, split and subjects must have the same length")
        self._ids = ids
        self._positions: dict[str, int] | None = None
        self._by_id: dict[str, int] | None = None

    def positions(self) -> dict[str, int]:
        """Position by image id (built once)."""
        if self._positions is None:
            self._positions = {iid: k for k, iid in enumerate(self._ids)}
        return self._positions

    def by_id(self) -> dict[str, int]:
        """Class index by image id (built once)."""
        if self._by_id is None:
            self._by_id = {iid: int(self.values[k]) for iid, k in self.positions().items()}
        return self._by_id

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.by_id()[key]
        return self.values[key]

    def get(self, image_id: str, default: Any = None) -> Any:
        return self.by_id().get(image_id, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self.by_id()
        return bool(np.any(self.values == key))

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[np.int64]:
        return iter(self.values)

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        return self.values if dtype is None else self.values.astype(dtype)

    def __eq__(self, other: object) -> Any:
        return self.values == (other.values if isinstance(other, Labels) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Labels({self.values.tolist()!r})"


@dataclass
class ImageSet:
    """The one image record of every command: images with labels, ids, splits, subjects and
    diagnostic regions, loaded lazily, looked up by index or by id.

    :func:`~gazelab.models.datasets.registry.open_image_set` builds one from an image spec
    (``synthetic:...``, ``folder:PATH``, ``ck+:PATH`` ...); sessions store that spec, so the
    same images are rebuilt for resume, heatmaps, comparison and masks.

    Attributes
    ----------
    ids : list of str
        Stable image ids (relative paths, ``name:row`` or ``synthetic-SEED-INDEX``).
    labels : Labels
        Class index into :data:`gazelab.CLASSES` per image, by position or by id (given as
        an ``(N,)`` int array or a :class:`Labels`).
    split : (N,) object
        ``'train'``, ``'val'`` or ``'test'`` where the dataset defines a split, else ``'all'``.
    loader : callable
        ``loader(i) -> (H, W) or (H, W, 3) uint8`` image ``i``.
    subjects : (N,) object
        Subject id per image where the dataset has them (CK+, synthetic ``subjects=K``),
        else ``''``.
    regions : dict of str -> (H, W) float32
        Diagnostic regions in ``[0, 1]`` by image id, where known (synthetic faces); empty
        for datasets without them.
    spec : str
        The image spec the set was opened from (``''`` when built directly).
    files : list of Path or None
        The file each image is decoded from, where the set reads files (``folder:``);
        ``None`` otherwise. Lets a cache key a decoded image by its file's content.
    read_bytes : callable or None
        ``read_bytes(data, path) -> image``: the loader's decoding of a file whose bytes a
        caller has read already (same result as :meth:`image`; e.g. a cache that hashed
        them), where the set reads :attr:`files`; ``None`` otherwise.
    """

    name: str
    ids: list[str]
    labels: Labels
    split: NDArray[np.object_]
    loader: Callable[[int], NDArray[np.uint8]]
    subjects: NDArray[np.object_]
    skipped: list[str]
    """Rows or files left out, one reason each (e.g. a path outside the dataset root)."""
    regions: dict[str, NDArray[np.float32]]
    spec: str

    def __init__(
        self,
        name: str,
        ids: list[str],
        labels: Labels | ArrayLike,
        split: NDArray[np.object_],
        loader: Callable[[int], NDArray[np.uint8]],
        subjects: NDArray[np.object_] | None = None,
        skipped: list[str] | None = None,
        regions: dict[str, NDArray[np.float32]] | None = None,
        spec: str = "",
        files: list[Path] | None = None,
        read_bytes: Callable[[bytes, Path], NDArray[np.uint8]] | None = None,
    ) -> None:
        n = len(ids)
        self.files = files if files is not None and len(files) == n else None
        self.read_bytes = read_bytes if self.files is not None else None
        self.name, self.ids, self.split, self.loader = name, ids, split, loader
        self.labels = labels if isinstance(labels, Labels) else Labels(labels, ids)
        self.subjects = (
            subjects if subjects is not None and subjects.size else np.array([""] * n, dtype=object)
        )
        self.skipped = [] if skipped is None else skipped
        self.regions = {} if regions is None else regions
        self.spec = spec or name
        if not (len(self.labels) == len(self.split) == len(self.subjects) == n):
            raise ValueError("ids, labels, split and subjects must have the same length")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, str) and image_id in self.labels.positions()

    def index(self, image_id: str) -> int:
        """Position of ``image_id``; a :class:`DatasetError` naming the set if it is absent."""
        try:
            return self.labels.positions()[image_id]
        except KeyError:
            raise DatasetError(f"image {image_id!r} is not in {self.spec}") from None

    def _at(self, key: int | str) -> int:
        return self.index(key) if isinstance(key, str) else int(key)

    def image(self, key: int | str) -> NDArray[np.uint8]:
        """Image ``key``: a position (``int``) or an image id (``str``)."""
        return self.loader(self._at(key))

    def label(self, key: int | str) -> int:
        """Class index of image ``key`` (a position or an image id)."""
        return int(self.labels.values[self._at(key)])

    def region(self, key: int | str) -> NDArray[np.float32] | None:
        """Diagnostic regions of image ``key``, or ``None`` where the set has none."""
        return self.regions.get(self.ids[self._at(key)])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels.values, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, counts, strict=True)}

    def subset(self, index: Sequence[int] | NDArray[np.int64]) -> ImageSet:
        idx = np.asarray(index, dtype=np.int64)
        parent = self.loader
        ids = [self.ids[i] for i in idx]
        return ImageSet(
            name=self.name,
            ids=ids,
            labels=self.labels.values[idx],
            split=self.split[idx],
            loader=lambda j: parent(int(idx[j])),
            subjects=self.subjects[idx],
            skipped=list(self.skipped),
            regions={i: self.regions[i] for i in ids if i in self.regions},
            spec=self.spec,
            files=None if self.files is None else [self.files[i] for i in idx],
            read_bytes=self.read_bytes,
        )


DEFAULT_MAX_PIXELS = int(StimulusSettings().max_image_megapixels * 1_000_000)
"""Pixel limit of :func:`read_image` when none is given: ``stimulus.max_image_megapixels``."""


def read_image_bytes(
    data: bytes, path: Path, *, max_pixels: int | None = None
) -> NDArray[np.uint8]:
    """:func:`read_image` of a file whose bytes ``data`` the caller has read already: an
    8-bit grey or RGB PNG (the commonest stimulus files) by the compiled fast path
    (:func:`~gazelab.models.datasets.png.decode_png`, ~1.4× faster than PIL, the same
    pixels), anything else by :func:`read_image` from ``path``."""
    from gazelab.models.datasets.png import decode_png

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    got = decode_png(data, limit)
    return got if got is not None else read_image(path, max_pixels=max_pixels)


def read_image(path: Path, *, max_pixels: int | None = None) -> NDArray[np.uint8]:
    """Read an image file as uint8 grey ``(H, W)`` or RGB ``(H, W, 3)``: the one decoder of
    every dataset loader.

    The size in the header is checked before any pixel is decoded: an image of more than
    ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`) pixels is refused, since a PNG of a
    few kilobytes can claim gigabytes of pixels (a decompression bomb).
    """
    from PIL import Image, UnidentifiedImageError

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > limit:
                raise DatasetError(
                    f"image file {path} is {width}×{height} = {width * height / 1e6:.1f} "
                    f"megapixels, over the limit of {limit / 1e6:g} megapixels; shrink it or raise "
                    "stimulus.max_image_megapixels in the settings"
                )
            im.load()
            if im.mode.startswith("I;16") or (im.mode == "I" and im.format == "PNG"):
                return _scale_16_bit(np.asarray(im))
            if im.mode in ("I", "F"):
                raise DatasetError(
                    f"image file {path} holds 32-bit {'integer' if im.mode == 'I' else 'float'} "
                    "pixels, which gazelab does not read; save it as an 8- or 16-bit image"
                )
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB" if im.mode in ("RGBA", "P", "CMYK") else "L")
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DatasetError(f"image file {path} is missing") from exc
    except Image.DecompressionBombError as exc:  # over twice PIL's limit: refused at open
        raise DatasetError(
            f"image file {path} claims more pixels than PIL will decode ({exc}); the limit is "
            f"{limit / 1e6:g} megapixels (stimulus.max_image_megapixels): shrink the image"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # SyntaxError / ValueError: what PIL's plugins raise on some malformed headers
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"image file {path} cannot be read as an image: {exc}") from exc


def _scale_16_bit(pixels: NDArray[Any]) -> NDArray[np.uint8]:
    """16-bit grey (0-65535) as 8-bit (0-255): ``round(v / 257)``, so 65535 is 255 (PIL's
    ``convert("L")`` clips every value over 255 to white instead)."""
    wide = np.clip(pixels.astype(np.float64), 0, 65535)
    return np.rint(wide / 257.0).astype(np.uint8)


def inside_root(root: Path, path: Path) -> Path | None:
    """``path`` resolved (symbolic links followed) if it is a regular file inside ``root``,
    else ``None``: dataset lists name files relative to their root, and a row such as
    ``../x.png``, ``/dev/zero`` or a link out of the root must not be read."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a link loop, a NUL byte
        return None
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        return None
    return resolved


def skipped_note(name: str, skipped: Sequence[str]) -> None:
    """Warn once (one line) that a loader left rows out, with the first reason."""
    if skipped:
        import warnings

        warnings.warn(
            f"{name}: skipped {len(skipped)} row(s)/file(s); first: {skipped[0]}",
            DatasetWarning,
            stacklevel=3,
        )


class DatasetWarning(GazelabWarning):
    """Rows of a dataset were skipped (``ImageSet.skipped`` lists why)."""


def integer_field(text: str | None, lo: int, hi: int, where: str, what: str) -> int:
    """``text`` as an integer in ``[lo, hi]``; ``"3.0000000e+00"`` (how CK+ writes codes)
    counts as 3, but ``3.7``, ``inf``, ``nan``, ``1e400`` or a value out of range raise a
    :class:`DatasetError` naming ``where`` (file and line) and ``what``."""
    raw = (text or "").strip()
    value: int | None
    try:
        value = int(raw)
    except ValueError:
        try:
            f = float(raw)
        except ValueError:
            f = math.nan
        # int(float) would truncate 3.7 to 3 and overflow on inf: accept only whole numbers
        value = int(f) if math.isfinite(f) and f.is_integer() else None
    if value is None or not lo <= value <= hi:
        raise DatasetError(f"{where}: {what} {raw!r} is not an integer in {lo}-{hi}")
    return value


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    return path
