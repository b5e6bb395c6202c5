"""Keras classifiers by name, and the one input convention every model here shares.

Models take ``(S, S, C)`` float images scaled to ``[0, 1]`` and end in a softmax
over the classes. Scaling happens outside the model (:func:`to_model_input`), so
the graph holds only layers that analyzers such as deep Taylor understand, and
no ``Lambda`` layers: a saved ``.keras`` file never carries code.

The package holds one concept per module: :mod:`.builders` (the architectures by name and
the input convention) and :mod:`.loading` (model files checked before Keras loads them:
nothing named in a file runs). Import from here:
``from gazelab.models.architectures import load_classifier``.

TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from gazelab.models.architectures.builders import (
    ARCHITECTURES,
    VGG_CONV,
    VGG_FC,
    ArchitectureError,
    build_model,
    simplified_vgg,
    six_module_cnn,
    small_cnn,
    to_model_input,
)
from gazelab.models.architectures.loading import (
    MAX_COMPRESSION_RATIO,
    MAX_MODEL_ASSETS_BYTES,
    MAX_MODEL_CONFIG_BYTES,
    MAX_MODEL_FILE_BYTES,
    MAX_MODEL_PARAMETERS,
    MAX_MODEL_UNPACKED_BYTES,
    MIN_BYTES_PER_WEIGHT,
    MODEL_ACTIVATIONS,
    MODEL_FILE_ENTRIES,
    MODEL_LAYER_CLASSES,
    MODEL_OBJECT_CLASSES,
    check_model_config,
    check_model_size,
    load_classifier,
    read_model_config,
    sweep_stale_model_copies,
)

__all__ = [
    "ARCHITECTURES",
    "ArchitectureError",
    "MAX_COMPRESSION_RATIO",
    "MAX_MODEL_ASSETS_BYTES",
    "MAX_MODEL_CONFIG_BYTES",
    "MAX_MODEL_FILE_BYTES",
    "MAX_MODEL_PARAMETERS",
    "MAX_MODEL_UNPACKED_BYTES",
    "MIN_BYTES_PER_WEIGHT",
    "MODEL_ACTIVATIONS",
    "MODEL_FILE_ENTRIES",
    "MODEL_LAYER_CLASSES",
    "MODEL_OBJECT_CLASSES",
    "VGG_CONV",
    "VGG_FC",
    "build_model",
    "check_model_config",
    "check_model_size",
    "load_classifier",
    "read_model_config",
    "simplified_vgg",
    "six_module_cnn",
    "small_cnn",
    "sweep_stale_model_copies",
    "to_model_input",
]
