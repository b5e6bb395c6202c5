"""What the store hands back: frozen records of a session and of a label."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionRecord:
    id: int
    uuid: str
    participant: str
    created_utc: str
    software_version: str
    settings_toml: str
    seed: int
    image_source: str
    stimulus_order: tuple[str, ...]
    start_local_s: float


@dataclass(frozen=True)
class LabelRecord:
    trial_index: int
    local_s: float
    label: str
    text: str
    confidence: float
    source: str
