"""Loading model files: a ``.keras`` file's config.json is read and checked without Keras
(only Keras' own layers, within size caps) before Keras loads a private copy of it, so
nothing named in a file runs (:func:`load_classifier`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gazelab.models.architectures.builders import ArchitectureError

# -- loading model files: nothing named in a file runs --------------------------------------
# Keras 2.14 builds a .keras file's layers from config.json by module and class name. A
# Lambda layer naming a library function (pydoc.pipepager with a shell command) runs it
# while loading, even with safe_mode=True, which only stops pickled lambdas. So config.json
# is read and checked here, before Keras sees the file: only the classes below may appear.
MODEL_LAYER_CLASSES: frozenset[str] = frozenset({
    # every layer the project's architectures use (tests check this against them)
    "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization",
    "Activation", "ReLU", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
    "Flatten", "Dropout", "ZeroPadding2D", "Add", "Concatenate",
    # other standard layers of Keras' registry without code, files or lookups in their config
    "Conv1D", "Conv3D", "Conv2DTranspose", "SeparableConv1D", "DepthwiseConv1D",
    "LeakyReLU", "PReLU", "ELU", "Softmax", "LayerNormalization", "GroupNormalization",
    "MaxPooling1D", "MaxPooling3D", "AveragePooling1D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Reshape", "Permute", "RepeatVector",
    "Cropping1D", "Cropping2D", "ZeroPadding1D", "UpSampling1D", "UpSampling2D",
    "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Rescaling", "Resizing",
})  # fmt: skip
"""Layer classes a model file may name (Keras' own; ``Lambda`` and the ``TFOpLambda`` of raw
TF calls are absent on purpose: their config names a function to call)."""

MODEL_OBJECT_CLASSES: dict[str, frozenset[str]] = {
    "keras.layers": MODEL_LAYER_CLASSES,
    "keras": frozenset({"Sequential", "Functional", "Model"}),
    "keras.models": frozenset({"Sequential", "Functional", "Model"}),
    "keras.src.engine.sequential": frozenset({"Sequential"}),
    "keras.src.engine.functional": frozenset({"Functional"}),
    "keras.src.engine.training": frozenset({"Model"}),
    "keras.initializers": frozenset(
        {
            "Constant",
            "GlorotNormal",
            "GlorotUniform",
            "HeNormal",
            "HeUniform",
            "Identity",
            "LecunNormal",
            "LecunUniform",
            "Ones",
            "Orthogonal",
            "RandomNormal",
            "RandomUniform",
            "TruncatedNormal",
            "VarianceScaling",
            "Zeros",
        }
    ),  # fmt: skip
    "keras.regularizers": frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"}),
    "keras.constraints": frozenset(
        {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint"}
    ),  # fmt: skip
    "keras.mixed_precision": frozenset({"Policy"}),
}
"""Allowed class names by the Keras module a config names; a config without a module
(older Keras) may name any of them."""

MODEL_ACTIVATIONS: frozenset[str] = frozenset({
    "relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "softplus",
    "softsign", "tanh", "selu", "elu", "exponential", "linear", "gelu", "swish", "silu", "mish",
})  # fmt: skip
"""Activation names a layer config may give as a string (looked up in Keras' activations)."""

_FUNCTION_MARKERS = frozenset({"function", "__lambda__", "__python_function__", "function_type"})
MODEL_FILE_ENTRIES = frozenset({"config.json", "metadata.json", "model.weights.h5",
                                "model.weights.npz"})  # fmt: skip
"""Entries of a Keras v3 ``.keras`` zip (plus ``assets/...``)."""
MAX_MODEL_CONFIG_BYTES = 16 * 2**20
"""config.json is text describing layers: a few MB even for Xception-sized graphs."""
MAX_MODEL_FILE_BYTES = 4 * 2**30
"""Largest model file read at all."""
MAX_MODEL_UNPACKED_BYTES = 2**30
"""Total uncompressed size of a model file's entries (InceptionV3's weights are 88 MB, with
an optimizer's state under 300 MB): Keras unpacks them into a temporary folder."""
MAX_MODEL_ASSETS_BYTES = 16 * 2**20
"""Total uncompressed size of the ``assets/`` entries (gazelab's models have none)."""
MAX_COMPRESSION_RATIO = 200
"""Entries over 1 MB, or a whole archive over 16 MB, packed tighter than this are refused as
zip bombs (weights barely compress; a bomb compresses 1000:1)."""
MAX_MODEL_PARAMETERS = 100_000_000
"""Most weights a model file may declare (gazelab's largest architecture has 22 million):
Keras allocates them all while building, before reading one."""
MIN_BYTES_PER_WEIGHT = 2
"""A model's weights file holds at least this many bytes per declared weight (float16)."""
_WEIGHTS_SLACK_BYTES = 2**20
_MODEL_COPY_PREFIX = "gazelab-model-"
_MAX_CONFIG_DEPTH = 200


def _refuse(path: Path, where: str, why: str) -> ArchitectureError:
    return ArchitectureError(f"{path}: refused to load the model: {where}{why}; "
                             "only models of Keras' own layers are loaded (no Lambda, no "
                             "custom code): rebuild it with gazelab's architectures")  # fmt: skip


def _too_big(path: Path, why: str) -> ArchitectureError:
    return ArchitectureError(f"{path}: refused to load the model: {why}; a classifier gazelab "
                             "can use is far smaller: check the file (or rebuild the model "
                             "with gazelab's architectures)")  # fmt: skip


def _layer_label(node: dict[str, Any], fallback: str) -> str:
    cfg = node.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    return f"layer {name!r} ({node.get('class_name')})" if name else fallback


def check_model_config(config: Any, path: Path) -> None:
    """Walk a ``.keras`` config.json and refuse anything that would make Keras import or call
    code: a ``Lambda``/``TFOpLambda`` layer, a function-typed object, a ``module`` outside
    Keras, a class or ``registered_name`` not in :data:`MODEL_OBJECT_CLASSES`, or an
    activation string Keras does not define. Raises :class:`ArchitectureError` naming the
    file and the offending layer."""
    # iterative walk: a config nested thousands deep must not end in RecursionError
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > _MAX_CONFIG_DEPTH:
            raise _refuse(path, where, f"config nested over {_MAX_CONFIG_DEPTH} deep")
        if isinstance(node, list):
            stack.extend((v, where, depth + 1) for v in node)
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            where = f"{_layer_label(node, where.rstrip(': ') or 'the model')}: "
            _check_object(node, path, where)
        for key, value in node.items():
            if key in _FUNCTION_MARKERS and key != "function":  # legacy function configs
                raise _refuse(path, where, f"a Python function ({key!r})")
            if key in ("activation", "recurrent_activation") and isinstance(value, str):
                if value not in MODEL_ACTIVATIONS:
                    raise _refuse(path, where, f"unknown activation {value!r}")
            if key == "compile_config":
                continue  # never deserialized: load_classifier loads with compile=False
            stack.append((value, where, depth + 1))


def _check_object(node: dict[str, Any], path: Path, where: str) -> None:
    cls = node.get("class_name")
    module = node.get("module")
    registered = node.get("registered_name")
    if not isinstance(cls, str) or cls in _FUNCTION_MARKERS or cls.startswith("__"):
        raise _refuse(path, where, f"a function or value object ({cls!r}), not a layer")
    if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
        raise _refuse(path, where, f"a {cls} layer (it calls a function named in the file)")
    if module is None:
        allowed = frozenset().union(*MODEL_OBJECT_CLASSES.values())
    else:
        mod = module.removeprefix("tensorflow.") if isinstance(module, str) else ""
        if mod not in MODEL_OBJECT_CLASSES:
            raise _refuse(path, where, f"module {module!r} is not one of Keras' own")
        allowed = MODEL_OBJECT_CLASSES[mod]
    if cls not in allowed:
        raise _refuse(path, where, f"class {cls!r} is not an allowed Keras layer")
    if registered is not None and registered != cls:
        raise _refuse(path, where, f"registered_name {registered!r} is not a Keras class")


def read_model_config(path: str | Path, *, shown_as: str | Path | None = None) -> dict[str, Any]:
    """config.json of a ``.keras`` file, read and checked without Keras: a zip of the known
    entries only (no paths out of the archive), within the size caps, and passing
    :func:`check_model_config`. Raises :class:`ArchitectureError` otherwise, naming
    ``shown_as`` (the user's file when ``path`` is a private copy of it)."""
    import json
    import zipfile

    p = Path(shown_as) if shown_as is not None else Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchitectureError(f"{p}: not a Keras .keras model file (not a zip archive: "
                                f"{exc})") from exc  # fmt: skip
    with zf:
        infos = zf.infolist()
        total = packed = assets = weights = 0
        for info in infos:
            name = info.filename
            parts = name.split("/")
            if (name.startswith(("/", "\\")) or "\\" in name or ".." in parts or ":" in name
                    or "\x00" in name):  # fmt: skip
                raise _refuse(p, "", f"archive entry {name!r} is a path out of the archive")
            if name not in MODEL_FILE_ENTRIES and parts[0] != "assets":
                raise _refuse(p, "", f"unexpected archive entry {name!r}")
            total += info.file_size
            packed += info.compress_size
            if parts[0] == "assets":
                assets += info.file_size
            elif name.startswith("model.weights."):
                weights += info.file_size
            if info.file_size > 2**20 and info.file_size > MAX_COMPRESSION_RATIO * max(
                info.compress_size, 1
            ):
                raise _refuse(p, "", f"archive entry {name!r} expands {info.file_size} bytes "
                              f"from {info.compress_size} (a zip bomb)")  # fmt: skip
        if total > MAX_MODEL_UNPACKED_BYTES:
            raise _too_big(p, f"its entries unpack to {total} bytes, over "
                           f"{MAX_MODEL_UNPACKED_BYTES}")  # fmt: skip
        if assets > MAX_MODEL_ASSETS_BYTES:
            raise _too_big(p, f"its assets/ entries unpack to {assets} bytes, over "
                           f"{MAX_MODEL_ASSETS_BYTES}")  # fmt: skip
        if total > 16 * 2**20 and total > MAX_COMPRESSION_RATIO * max(packed, 1):
            raise _too_big(p, f"its {len(infos)} entries expand {total} bytes from {packed} "
                           "(a zip bomb)")  # fmt: skip
        try:
            info = zf.getinfo("config.json")
        except KeyError as exc:
            raise ArchitectureError(f"{p}: not a Keras .keras model file (no config.json)") from exc
        if info.file_size > MAX_MODEL_CONFIG_BYTES:
            raise _refuse(p, "", f"config.json is {info.file_size} bytes, over "
                          f"{MAX_MODEL_CONFIG_BYTES}")  # fmt: skip
        try:
            with zf.open(info) as fh:
                raw = fh.read(MAX_MODEL_CONFIG_BYTES + 1)
            config = json.loads(raw)
        except (zipfile.BadZipFile, OSError, ValueError, RecursionError) as exc:
            raise ArchitectureError(f"{p}: config.json is unreadable: {exc}") from exc
    if not isinstance(config, dict):
        raise ArchitectureError(f"{p}: config.json is not a model description")
    check_model_config(config, p)
    check_model_size(config, weights, p)
    return config


def check_model_size(config: dict[str, Any], weights_bytes: int, path: Path) -> int:
    """The number of weights ``config`` makes Keras allocate (counted without building it,
    :func:`gazelab.models.param_count.count_parameters`); raises :class:`ArchitectureError`
    when that is over :data:`MAX_MODEL_PARAMETERS`, or more than a weights file of
    ``weights_bytes`` can hold (:data:`MIN_BYTES_PER_WEIGHT` each): a config of a few KB
    must not make Keras allocate gigabytes before the file is found wrong."""
    from gazelab.models.param_count import ConfigShapeError, count_parameters

    try:
        n, _ = count_parameters(config)
    except ConfigShapeError as exc:
        raise ArchitectureError(f"{path}: config.json declares sizes Keras cannot build "
                                f"({exc})") from exc  # fmt: skip
    if n > MAX_MODEL_PARAMETERS:
        raise _too_big(path, f"config.json declares {n:,} weights, over "
                       f"{MAX_MODEL_PARAMETERS:,}")  # fmt: skip
    if n * MIN_BYTES_PER_WEIGHT > weights_bytes + _WEIGHTS_SLACK_BYTES:
        raise _too_big(path, f"config.json declares {n:,} weights but the weights file holds "
                       f"{weights_bytes:,} bytes")  # fmt: skip
    return n


def sweep_stale_model_copies(tmp_dir: str | Path | None = None) -> int:
    """Remove the private copies (``gazelab-model-<pid>-*``) that loads killed half-way
    left in the temporary folder: those of processes that no longer run (and, from older
    versions without the pid, those over an hour old). Only the user's own folders are
    touched. Returns how many were removed."""
    import os
    import re
    import shutil
    import tempfile
    import time

    root = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.gettempdir())
    removed = 0
    try:
        candidates = list(root.glob(f"{_MODEL_COPY_PREFIX}*"))
    except OSError:
        return 0
    for d in candidates:
        try:
            st = d.lstat()
            if not d.is_dir() or d.is_symlink() or st.st_uid != os.getuid():
                continue
        except OSError:
            continue
        m = re.fullmatch(rf"{_MODEL_COPY_PREFIX}(\d+)-.*", d.name)
        if m is not None:
            if _process_alive(int(m.group(1))):
                continue
        elif time.time() - st.st_mtime < 3600:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += not d.exists()
    return removed


def _process_alive(pid: int) -> bool:
    import os

    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number that is not one: leave it
    return True


def load_classifier(path: str | Path) -> Any:
    """A saved Keras classifier (``.keras``), the one loader of model files in gazelab.

    The file is copied to a private temporary folder, its config.json checked by
    :func:`read_model_config` (nothing named in it can run), and only then loaded by Keras
    (``compile=False``, ``safe_mode=True``) from that copy, so the checked file is the
    loaded file. Raises :class:`ArchitectureError` (one line, exit 2 on the command line)
    for a file that is refused or unreadable.
    """
    import os
    import shutil
    import tempfile

    sweep_stale_model_copies()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    if p.is_dir():
        raise ArchitectureError(
            f"{p} is a folder, not a model file: give the .keras file (a SavedModel folder is "
            "not loaded; re-save the model with model.save('name.keras'))"
        )
    if p.suffix != ".keras":
        raise ArchitectureError(
            f"{p}: only the .keras format is loaded (no HDF5/SavedModel/pickles); "
            "re-save the model with model.save('name.keras')"
        )
    if not p.is_file():
        raise ArchitectureError(f"{p}: not a regular file")
    if p.stat().st_size > MAX_MODEL_FILE_BYTES:
        raise _refuse(p, "", f"{p.stat().st_size} bytes, over {MAX_MODEL_FILE_BYTES}")
    # The pid in the name lets a later load remove the copy of a load that was killed.
    with tempfile.TemporaryDirectory(prefix=f"{_MODEL_COPY_PREFIX}{os.getpid()}-") as tmp:
        copy = Path(tmp) / "model.keras"
        shutil.copyfile(p, copy)
        read_model_config(copy, shown_as=p)
        import tensorflow as tf

        try:
            return tf.keras.models.load_model(copy, compile=False, safe_mode=True)
        except (ValueError, OSError, TypeError, KeyError) as exc:
            raise ArchitectureError(f"{p}: cannot load the model: {exc}") from exc
