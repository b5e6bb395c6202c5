"""Typed, validated settings for every stage, loaded from and saved to TOML.

Every session, analysis and training run stores the ``Settings`` it was made
with (as TOML text), so each result says how it was made (docs/architecture.md#rules-of-the-house).
Defaults are the reference set-up of docs/running-a-session.md#the-protocol and
docs/algorithms.md#heatmaps.

Each field declares its allowed values next to its default (``range`` or
``choices``); a bad value or an unknown key raises :class:`SettingsError`
naming the key, the value and what is allowed.

The field checks and the reading of TOML files and tables are :mod:`gazelab.config`'s
(re-exported here: ``from gazelab.settings import SettingsError`` keeps working).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from gazelab.analysis.saliency import ANALYZERS
from gazelab.config import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from gazelab.config import SettingsError as SettingsError
from gazelab.config import _listing, _Validated
from gazelab.config import dataclass_section as dataclass_section
from gazelab.config import parse_toml as parse_toml
from gazelab.config import read_toml_file as read_toml_file
from gazelab.config import setting as setting
from gazelab.config import typed_value as typed_value
from gazelab.config import validate as validate
from gazelab.gaze.fixations import DEFAULT_METHOD, DETECTORS
from gazelab.gaze.geometry import DisplayGeometry
from gazelab.gaze.trackers.registry import TRACKERS


@dataclasses.dataclass(frozen=True)
class StimulusSettings(_Validated):
    """How each image is shown (docs/running-a-session.md#the-protocol)."""

    _section = "stimulus"
    square_px: int = setting(1200, range=(64, 8192), doc="side of the centred stimulus square")
    background: str = setting("grey", choices=("grey", "black"), doc="surround colour")
    feedback_line_px: int = setting(
        30, range=(0, 400), doc="room kept under the square for the recognised word (px)"
    )
    min_square_px: int = setting(
        400, range=(64, 8192), doc="a screen that fits only a smaller square is refused"
    )
    max_image_megapixels: float = setting(
        40.0,
        range=(0.01, 89.0),
        doc="larger images (width × height, from the file header) are refused before "
        "decoding: a few-KB PNG can claim gigabytes of pixels; PIL's own limit is 89",
    )
    flip: str = setting(
        "auto",
        choices=("auto", "vsync", "swap", "paint"),
        doc="how a phase reaches the screen and when its onset is taken"
        " (docs/running-a-session.md#stimulus-onsets): vsync = drawn with OpenGL, swapped on"
        " the display's refresh, onset at the swap; swap = the same where the driver offers"
        " no swap control; paint = drawn by the CPU, onset at the paint's end; auto = vsync"
        " where it can be had, else paint",
    )


@dataclasses.dataclass(frozen=True)
class ProtocolSettings(_Validated):
    """Trial timings and session flow (docs/running-a-session.md#the-protocol; defaults from Utz &
    Carbon 2016)."""

    _section = "protocol"
    blank1_ms: float = setting(500.0, range=(0, 10_000))
    cross_ms: float = setting(200.0, range=(0, 10_000))
    blank2_ms: float = setting(500.0, range=(0, 10_000))
    cross_size_px: int = setting(40, range=(4, 400))
    cross_width_px: int = setting(4, range=(1, 40))
    advance_key: str = setting("space", choices=("space", "return", "right"))
    seed: int = setting(0, range=(0, 2**31 - 1), doc="stimulus order seed")
    order: str = setting(
        "random",
        choices=("random", "latin", "fixed"),
        doc="random: per participant, from the pseudonym and seed; latin: balanced Latin"
        " square across the store's participants; fixed: the seed's order for everyone",
    )
    practice_trials: int = setting(0, range=(0, 20), doc="practice images first, not stored")
    break_every_n_trials: int = setting(0, range=(0, 10_000), doc="a rest screen; 0 = none")
    calibration_points: int = setting(9, choices=(5, 9, 12, 16))
    validate_every_n_trials: int = setting(0, range=(0, 10_000), doc="0 = only before")


@dataclasses.dataclass(frozen=True)
class TrackerSettings(_Validated):
    """Which tracker to use and how to reach it (docs/running-a-session.md#trackers)."""

    _section = "tracker"
    kind: str = setting("sim", choices=TRACKERS.choices(), doc="gaze.trackers.registry.TRACKERS")
    host: str = setting("127.0.0.1")
    port: int = setting(
        0, range=(0, 65535), doc="0 = the tracker's own (Eye Tribe 6555, GazePoint 4242)"
    )
    stream: str = setting("", doc="LSL stream query, e.g. type=Gaze or name=Tobii (lsl only)")
    rate_hz: int = setting(
        60,
        range=(1, 2000),
        doc="nominal sampling rate (EyeLink and Tobii Spectrum go to 1200-2000 Hz)",
    )
    sample_batch_ms: float = setting(
        50.0, range=(1, 1000), doc="store commit interval: at most this much gaze is lost at a kill"
    )


@dataclasses.dataclass(frozen=True)
class VoiceSettings(_Validated):
    """Spoken-label recogniser (docs/voice.md)."""

    _section = "voice"
    backend: str = setting(
        "keys",
        choices=("keys", "default", "pocketsphinx", "whisper", "vosk"),
        doc="default: the best measured recogniser installed (whisper with an installed"
        " model, else pocketsphinx; docs/voice.md)",
    )
    whisper_model: str = setting(
        "tiny.en",
        doc="for backend = 'whisper': tiny.en, base (`gazelab voice install`) or a folder",
    )
    whisper_veto: str = setting(
        "ratio",
        choices=("ratio", "strict"),
        doc="for backend = 'whisper': ratio = a label is vetoed when it is more than"
        " VETO_MARGIN less likely than the unprompted transcript (more labels accepted);"
        " strict = vetoed whenever the unprompted transcript is one other English word"
        " (fewer near-misses taken); docs/voice.md",
    )
    vosk_model: str = setting("", doc="folder of a Vosk model, for backend = 'vosk'")
    min_confidence: float = setting(0.5, range=(0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class FixationSettings(_Validated):
    """Fixation detection (docs/algorithms.md#fixations)."""

    _section = "fixations"
    method: str = setting(
        DEFAULT_METHOD,
        choices=DETECTORS.choices(),
        doc="gaze.detectors: one per module; the default chosen by benchmarks/bench_fixations.py",
    )
    dispersion_deg: float = setting(1.0, range=(0.01, 10.0), doc="idt")
    min_duration_ms: float = setting(100.0, range=(1.0, 5000.0), doc="idt window")
    velocity_deg_s: float = setting(30.0, range=(1.0, 1000.0), doc="ivt, ivt_filter")
    min_fixation_ms: float = setting(
        40.0, range=(0.0, 5000.0), doc="shortest fixation of ivt, ivt_filter, adaptive"
    )
    velocity_window_ms: float = setting(
        20.0, range=(2.0, 200.0), doc="Savitzky-Golay window (order 2) of the velocity"
    )
    gap_fill_ms: float = setting(75.0, range=(0.0, 1000.0), doc="ivt_filter interpolates gaps")
    merge_gap_ms: float = setting(
        75.0, range=(0.0, 1000.0), doc="ivt_filter, adaptive: join fixations this close in time"
    )
    merge_angle_deg: float = setting(
        0.5, range=(0.0, 10.0), doc="... and this close in angle (centroids)"
    )

    def detector_params(self) -> dict[str, float]:
        """The keyword arguments of :func:`~gazelab.gaze.fixations.detect_fixations`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "method"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class HeatmapSettings(_Validated):
    """Fixation heatmaps (docs/algorithms.md#heatmaps)."""

    _section = "heatmap"
    span_deg: float = setting(5.0, range=(0.1, 60.0), doc="visual span")
    fwhm_fraction: float = setting(0.4, range=(0.01, 1.0), doc="FWHM as a fraction of the span")
    duration_weighting: bool = setting(False, choices=(False, True))


@dataclasses.dataclass(frozen=True)
class AnalysisSettings(_Validated):
    """Saliency and comparison (docs/algorithms.md#model-heatmaps)."""

    _section = "analysis"
    analyzer: str = setting(
        "deep_taylor",
        choices=ANALYZERS.choices(),
        doc="relevance method (analysis.saliency.ANALYZERS)",
    )
    point_source: str = setting(
        "events",
        choices=("events", "samples"),
        doc="a fixation point is a fixation event (centroid) or each sample in a fixation",
    )
    cache_max_mb: int = setting(
        2048,
        range=(0, 10**7),
        doc="size cap (MiB) of the saliency cache's derived files (prepared-map sorts, "
        "decoded images), least recently used deleted first after each compare; 0: no cap",
    )
    human_pairs: str = setting(
        "all",
        choices=("all", "others"),
        doc="human-vs-human rows: 'all' scores every ordered pair of annotators (A(A-1) per "
        "image), 'others' each annotator against the pooled maps of all other annotators of "
        "the image (A per image; docs/comparison.md#pooled-others)",
    )
    baseline_maps: int = setting(
        200,
        range=(0, 10**9),
        doc="the chance-level baselines score at most this many (image, annotator) reference "
        "maps of their sampled images, each image in turn and the annotators rotating in a "
        "seeded order (docs/comparison.md#baseline-maps); 0: every map",
    )


@dataclasses.dataclass(frozen=True)
class MaskSettings(_Validated):
    """Mask algorithms (docs/algorithms.md#masks)."""

    _section = "masks"
    negative_fraction: float = setting(0.1, range=(0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class TrainingSettings(_Validated):
    """Trainer / Trainee training (docs/algorithms.md#training)."""

    _section = "training"
    architecture: str = setting(
        "mobilenet_v2",
        choices=(
            "small_cnn",
            "six_module_cnn",
            "simplified_vgg",
            "mobilenet_v2",
            "inception_v3",
            "xception",
        ),
    )
    input_size: int = setting(96, range=(16, 512))
    learning_rate: float = setting(1e-3, range=(1e-7, 1.0))
    batch_size: int = setting(32, range=(1, 4096))
    epochs: int = setting(50, range=(1, 10_000))
    masked_epochs: int = setting(9, range=(0, 10_000))
    seed: int = setting(0, range=(0, 2**31 - 1))
    strategy: str = setting("default", choices=("default", "mirrored", "multi_worker_mirrored"))
    eval_every_steps: int = setting(
        0, range=(0, 10**9), doc="validation macro-F1 every N steps too (0 = once per epoch)"
    )
    augment: bool = setting(True, choices=(False, True), doc="docs/algorithms.md#training")
    class_weighted: bool = setting(True, choices=(False, True))


@dataclasses.dataclass(frozen=True)
class QualitySettings(_Validated):
    """Data-quality limits (definitions in gaze/quality.py)."""

    _section = "quality"
    validation_mean_accuracy_deg: float = setting(
        1.0, range=(0.0, 10.0), doc="a validation above this blocks the start"
    )
    validation_max_point_accuracy_deg: float = setting(
        1.5, range=(0.0, 10.0), doc="any target above this blocks the start too"
    )
    drift_check_max_deg: float = setting(
        1.5,
        range=(0.0, 10.0),
        doc="after each break one centre target: gaze further off recalibrates (0 = no check)",
    )
    max_trial_loss_pct: float = setting(
        100.0, range=(0.0, 100.0), doc="compare leaves out trials losing more (100 = keep all)"
    )
    max_accuracy_deg: float = setting(
        0.0, range=(0.0, 10.0), doc="compare leaves out worse-validated sessions (0 = keep all)"
    )


_SECTIONS: dict[str, type] = {
    "stimulus": StimulusSettings,
    "protocol": ProtocolSettings,
    "tracker": TrackerSettings,
    "voice": VoiceSettings,
    "fixations": FixationSettings,
    "heatmap": HeatmapSettings,
    "analysis": AnalysisSettings,
    "masks": MaskSettings,
    "training": TrainingSettings,
    "quality": QualitySettings,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """All settings of a project; stored verbatim with every result."""

    display: DisplayGeometry = dataclasses.field(default_factory=DisplayGeometry.from_diagonal)
    stimulus: StimulusSettings = dataclasses.field(default_factory=StimulusSettings)
    protocol: ProtocolSettings = dataclasses.field(default_factory=ProtocolSettings)
    tracker: TrackerSettings = dataclasses.field(default_factory=TrackerSettings)
    voice: VoiceSettings = dataclasses.field(default_factory=VoiceSettings)
    fixations: FixationSettings = dataclasses.field(default_factory=FixationSettings)
    heatmap: HeatmapSettings = dataclasses.field(default_factory=HeatmapSettings)
    analysis: AnalysisSettings = dataclasses.field(default_factory=AnalysisSettings)
    masks: MaskSettings = dataclasses.field(default_factory=MaskSettings)
    training: TrainingSettings = dataclasses.field(default_factory=TrainingSettings)
    quality: QualitySettings = dataclasses.field(default_factory=QualitySettings)

    def replace(self, **sections: Any) -> Settings:
        return dataclasses.replace(self, **sections)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {"display": _display_to_dict(self.display)}
        for name in _SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "settings") -> Settings:
        unknown = set(data) - {"display", *_SECTIONS}
        if unknown:
            raise SettingsError(
                f"{source}: unknown section(s) {_listing(unknown)}; "
                f"known sections are {['display', *_SECTIONS]}"
            )
        kwargs: dict[str, Any] = {}
        if "display" in data:
            kwargs["display"] = _display_from_dict(_table(data["display"], "display", source))
        for name, klass in _SECTIONS.items():
            if name in data:
                kwargs[name] = _section_from_dict(klass, _table(data[name], name, source), source)
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, text: str, source: str = "settings") -> Settings:
        return cls.from_dict(parse_toml(text, source), source)


def load_settings(path: str | Path) -> Settings:
    """Read settings from a TOML file; missing keys take their defaults."""
    p = Path(path)
    _, data = read_toml_file(p, "settings file")
    return Settings.from_dict(data, source=str(p))


def save_settings(settings: Settings, path: str | Path) -> None:
    from gazelab.fileio import atomic_write

    atomic_write(path, settings.to_toml())


def _table(value: Any, name: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{source}: [{name}] must be a table, got {value!r}")
    return value


def _section_from_dict(klass: type, table: Mapping[str, Any], source: str) -> Any:
    return dataclass_section(klass, table, source, klass._section)  # type: ignore[attr-defined]


_DISPLAY_KEYS = {
    "diagonal_in",
    "width_mm",
    "height_mm",
    "resolution_px",
    "distance_cm",
    "distance_mm",
}


def _display_to_dict(g: DisplayGeometry) -> dict[str, Any]:
    return {
        "width_mm": g.width_mm,
        "height_mm": g.height_mm,
        "resolution_px": list(g.resolution_px),
        "distance_mm": g.distance_mm,
    }


def _display_from_dict(table: Mapping[str, Any]) -> DisplayGeometry:
    unknown = set(table) - _DISPLAY_KEYS
    if unknown:
        raise SettingsError(
            f"unknown key(s) {_listing('display.' + k for k in unknown)}; "
            f"[display] accepts {sorted(_DISPLAY_KEYS)}"
        )
    res = table.get("resolution_px", (2560, 1440))
    if (
        not isinstance(res, (list, tuple))
        or len(res) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in res)
    ):
        raise SettingsError(f"display.resolution_px = {res!r} must be two positive integers [w, h]")
    if "distance_cm" in table and "distance_mm" in table:
        raise SettingsError("give display.distance_cm or display.distance_mm, not both")
    distance_mm = (
        _number(table["distance_cm"], "display.distance_cm") * 10.0
        if "distance_cm" in table
        else _number(table.get("distance_mm", 700.0), "display.distance_mm")
    )
    has_wh = "width_mm" in table or "height_mm" in table
    if has_wh and "diagonal_in" in table:
        raise SettingsError("give display.diagonal_in or display.width_mm/height_mm, not both")
    try:
        if has_wh:
            if not ("width_mm" in table and "height_mm" in table):
                raise SettingsError("display.width_mm and display.height_mm go together")
            return DisplayGeometry(
                width_mm=_number(table["width_mm"], "display.width_mm"),
                height_mm=_number(table["height_mm"], "display.height_mm"),
                resolution_px=(int(res[0]), int(res[1])),
                distance_mm=distance_mm,
            )
        return DisplayGeometry.from_diagonal(
            diagonal_in=_number(table.get("diagonal_in", 27.0), "display.diagonal_in"),
            resolution_px=(int(res[0]), int(res[1])),
            distance_mm=distance_mm,
        )
    except ValueError as exc:
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(str(exc)) from exc


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{key} = {value!r} must be a number")
    return float(value)
