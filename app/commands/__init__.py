"""The bodies of the ``gazelab`` sub-commands, one module per concept (docs/cli.md).

:mod:`gazelab.app.cli` builds the parser and catches user errors; each ``cmd_x(args)`` here
turns the parsed flags into a call of the core function that owns the work and prints what
it did. Every handler imports what it needs inside itself, so ``gazelab --help`` starts
without TensorFlow or Qt.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Progress = Callable[[str, int, int], None]


def settings_of(args: argparse.Namespace) -> Any:
    """The settings of ``--config`` (validated), or the defaults."""
    from gazelab.settings import Settings, load_settings

    return load_settings(args.config) if getattr(args, "config", None) else Settings()


def max_pixels(args: argparse.Namespace) -> int:
    """The decoder's pixel limit: ``stimulus.max_image_megapixels`` of the settings."""
    return int(settings_of(args).stimulus.max_image_megapixels * 1_000_000)


def tqdm_progress() -> Progress:
    """A (stage, done, total) callback drawing one tqdm bar per stage."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>8}", unit="img", leave=True,
                                     disable=None)  # fmt: skip  # no bars into a pipe or log
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


def analysis_settings(args: argparse.Namespace, settings: Any = None) -> Any:
    """``[analysis]`` of the settings (``settings``, or those of ``--config``) with
    ``--analyzer`` / ``--point-source`` applied."""
    from gazelab.settings import AnalysisSettings

    base = (settings if settings is not None else settings_of(args)).analysis
    return AnalysisSettings(
        analyzer=args.analyzer or base.analyzer,
        point_source=args.point_source or base.point_source,
        cache_max_mb=base.cache_max_mb,
        human_pairs=getattr(args, "human_pairs", None) or base.human_pairs,
    )
