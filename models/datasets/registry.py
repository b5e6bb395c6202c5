"""Dataset layouts registered by name, and the one parser of image specs (docs/architecture.md#data-flow).

An image spec is ``LAYOUT:ARGUMENT``: ``synthetic:N:SEED[:SIZE][:subjects=K][:renderer=a|b]``,
``folder:PATH``, ``ck+:PATH`` (or ``ckplus:``), ``fer+:PATH`` (or ``ferplus:``),
``affectnet:PATH``. :func:`open_image_set` turns any of them into the one
:class:`~gazelab.models.datasets.base.ImageSet`; every command that takes images (annotate,
heatmaps, saliency, masks, prune, train, esr, transfer) goes through it, and sessions store
the spec so the same images are rebuilt later.

Each layout module of :mod:`gazelab.models.datasets` (or of another package, named under
the ``gazelab.layouts`` entry point) registers its loader with :func:`register_layout` in
:data:`LAYOUTS`; the registry imports those modules the first time it is read, so a new
layout is one new module (plus its test) and nothing else: the CLI help, error messages
and ``SessionConfig.problems()`` read :func:`layouts`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.plugins import Registry

Loader = Callable[..., ImageSet]
"""``loader(argument, *, max_pixels=None, **options) -> ImageSet``."""


def _folder_problem(argument: str) -> str | None:
    if not argument:
        return "needs a path"
    path = Path(argument)
    if path.is_dir():
        return None
    if path.exists():
        return f"{argument} is a file, not a folder of images (name the folder that holds it)"
    return f"folder {argument} does not exist"


@dataclass(frozen=True)
class Layout:
    """A registered dataset layout.

    ``usage``: how a spec of it is written (``ck+:PATH``); ``about``: one line for the help;
    ``problem(argument)``: a cheap check without loading (``None`` when the argument looks
    right), e.g. the folder exists or the synthetic numbers parse.
    """

    name: str
    load: Loader
    usage: str
    about: str
    aliases: tuple[str, ...] = ()
    problem: Callable[[str], str | None] = _folder_problem
    needs_argument: bool = True

    def options(self) -> list[str]:
        """The layout's own keywords (``last_frames`` for CK+ ...), for :func:`open_image_set`."""
        params = inspect.signature(self.load).parameters.values()
        return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "max_pixels"]


LAYOUTS: Registry[Layout] = Registry(
    "dataset layout",
    "gazelab.models.datasets",
    group="gazelab.layouts",
    form=lambda layout: layout.usage,
    error=DatasetError,
)
"""Every layout by name (aliases too): this package's modules and installed packages'
``gazelab.layouts`` entry points, imported on first use."""


def register_layout(
    name: str,
    *,
    usage: str | None = None,
    about: str = "",
    aliases: tuple[str, ...] = (),
    problem: Callable[[str], str | None] | None = None,
    needs_argument: bool = True,
) -> Callable[[Loader], Loader]:
    """Decorator: register ``loader(argument, *, max_pixels=None, **options) -> ImageSet`` as
    layout ``name`` (``aliases`` are other names of it, e.g. ``ckplus`` for ``ck+``;
    ``problem``: a cheap check of the argument, by default that it is an existing folder)."""

    def add(loader: Loader) -> Loader:
        layout = Layout(name, loader, usage or f"{name}:PATH", about, tuple(aliases),
                        problem or _folder_problem, needs_argument)  # fmt: skip
        LAYOUTS.add(name, layout, aliases=tuple(aliases))
        return loader

    return add


def layouts() -> dict[str, Layout]:
    """Every registered layout by its name (aliases left out): those without an argument
    (``synthetic``) first, then by name."""
    named = sorted(LAYOUTS.values(), key=lambda v: (v.needs_argument, v.name))
    return {v.name: v for v in named}


def layout_names() -> list[str]:
    """Every name a spec may start with, aliases included."""
    return list(LAYOUTS.all_names())


def layout_usage() -> str:
    """``synthetic:N:SEED..., folder:PATH, ck+:PATH, ...``: for help texts and errors."""
    return ", ".join(layout.usage for layout in layouts().values())


def find_layout(name: str) -> Layout:
    """The layout called ``name`` (case-insensitive, aliases too), or a :class:`DatasetError`
    listing the registered ones."""
    layout = LAYOUTS.find(name.strip().lower())
    if layout is None:
        raise DatasetError(f"unknown dataset layout {name!r}; choose one of "
                           f"{', '.join(layouts())}{LAYOUTS.broken()}")  # fmt: skip
    return layout


def parse_image_spec(spec: str) -> tuple[Layout, str]:
    """``LAYOUT:ARGUMENT`` -> the registered layout and its argument (not yet loaded)."""
    kind, _, rest = spec.partition(":")
    layout = LAYOUTS.find(kind.strip().lower())
    if layout is None:
        raise DatasetError(
            f"unknown image source {spec!r}; use one of {layout_usage()}{LAYOUTS.broken()}"
        )
    if layout.needs_argument and not rest:
        raise DatasetError(f"image source {spec!r} needs a path: {layout.usage}")
    return layout, rest


def as_image_spec(text: str, layout: str = "folder") -> str:
    """``text`` if it is an image spec, else ``text`` read as a PATH in ``layout``:
    ``as_image_spec("faces/") == "folder:faces/"``. A spec starts with a layout's name and
    ``:``; ``WORD:...`` that is no existing path counts as a spec too, so a mistyped layout
    is refused with the registered ones listed instead of being looked for as a folder."""
    kind, sep, _ = text.partition(":")
    if sep and kind.strip().lower() in LAYOUTS:
        return text
    if sep and re.fullmatch(r"[A-Za-z][\w+-]+", kind) and not Path(text).exists():
        return text
    return f"{find_layout(layout).name}:{text}"


def image_spec_problem(spec: str) -> str | None:
    """What is wrong with ``spec`` without loading any image (unknown layout, a missing
    folder, synthetic numbers that do not parse), or ``None``."""
    try:
        layout, argument = parse_image_spec(spec)
    except DatasetError as exc:
        return str(exc)
    problem = layout.problem(argument)
    return f"image source {spec!r}: {problem}" if problem else None


def check_image_spec(spec: str) -> None:
    """Raise :func:`image_spec_problem`'s message as a :class:`DatasetError`: commands call it
    before slow work (loading a model) so a mistyped spec fails at once."""
    problem = image_spec_problem(spec)
    if problem:
        raise DatasetError(problem)


def open_image_set(spec: str, *, max_pixels: int | None = None, **options: Any) -> ImageSet:
    """The images named by ``spec`` (see the module docstring) as one :class:`ImageSet`.

    ``max_pixels``: the decoder's pixel limit (``stimulus.max_image_megapixels``);
    ``options``: layout-specific keywords (``last_frames=`` for CK+, ``crop_faces=`` for
    AffectNet), refused by layouts that do not have them. An empty set is an error."""
    layout, argument = parse_image_spec(spec)
    problem = layout.problem(argument)
    if problem:
        raise DatasetError(f"image source {spec!r}: {problem}")
    if options:
        unknown = sorted(set(options) - set(layout.options()))
        if unknown:
            raise DatasetError(f"the {layout.name} layout has no option(s) {unknown}")
    images = layout.load(argument, max_pixels=max_pixels, **options)
    if not images.ids:
        raise DatasetError(f"no images found in {argument} ({layout.name} layout)")
    images.spec = spec
    return images
