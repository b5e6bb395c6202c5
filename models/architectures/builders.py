"""Keras classifiers by name (:data:`ARCHITECTURES`, :func:`build_model`) and the one
input convention every model here shares (:func:`to_model_input`).

TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError


class ArchitectureError(GazelabError, ValueError):
    """Unknown architecture or an input size it cannot take."""


def small_cnn(input_shape: tuple[int, int, int], n_classes: int) -> Any:
    """Three conv blocks (conv + ReLU, batch norm after the activation, which deep Taylor
    handles; without it the faces' early loss plateau lasted epochs) and a dense layer:
    trains on 32–96 px faces in seconds (tests, demo, benchmarks)."""
    import tensorflow as tf

    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input(input_shape),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.BatchNormalization(momentum=0.9, synchronized=True),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.BatchNormalization(momentum=0.9, synchronized=True),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.BatchNormalization(momentum=0.9, synchronized=True),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(n_classes, activation="softmax"),
        ],
        name="small_cnn",
    )


def six_module_cnn(input_shape: tuple[int, int, int], n_classes: int) -> Any:
    """Narayan & Ge's CNN: six modules of conv + batch norm + ReLU + pooling, 16 → 256 feature
    maps, max pooling in the first five and global average pooling in the last, then the
    class scores. Distinctiveness pruning works on the last conv layer's maps."""
    import tensorflow as tf

    layers = tf.keras.layers
    stack: list[Any] = [layers.Input(input_shape)]
    for i, filters in enumerate((16, 32, 64, 128, 256, 256)):
        stack += [
            layers.Conv2D(filters, 3, padding="same", name=f"conv{i + 1}"),
            layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}"),
            layers.ReLU(name=f"relu{i + 1}"),
            layers.MaxPooling2D(padding="same", name=f"pool{i + 1}")
            if i < 5
            else layers.GlobalAveragePooling2D(name="pool6"),
        ]
    stack.append(layers.Dense(n_classes, activation="softmax", name="scores"))
    return tf.keras.Sequential(stack, name="six_module_cnn")


VGG_CONV = ((64, 64), (128, 128), (256, 256))
"""Filters of the simplified VGG's three conv blocks (two 3×3 convs each, then 2×2 pooling)."""
VGG_FC = 1664
"""Units of its two fully connected layers: 19.26 M parameters at 48×48 with 7 classes."""


def simplified_vgg(input_shape: tuple[int, int, int], n_classes: int, width: float = 1.0) -> Any:
    """Tannugi et al.'s simplified VGG for 48×48 grey faces: three blocks of two 3×3 conv → batch
    norm → ReLU and max pooling (64, 128, 256 filters), two fully connected layers of 1 664
    units, each followed by 50 % dropout, and the class scores; ≈ 19.2 M parameters at
    48×48. The paper gives the parameter count, not the layer list: this is our
    reconstruction. Batch norm and He initialisation are our additions: without them the
    network sat on the ln 8 loss plateau for the first epochs on synthetic faces. ``width``
    scales every layer (benchmarks on CPU). Layer names: ``conv{b}_{i}``, ``bn{b}_{i}``,
    ``fc1``, ``fc2``, ``scores`` (the fine-tuning strategies name them)."""
    import tensorflow as tf

    layers = tf.keras.layers
    w = lambda n: max(4, int(round(n * width)))  # noqa: E731
    stack: list[Any] = [layers.Input(input_shape)]
    for b, block in enumerate(VGG_CONV, start=1):
        for i, filters in enumerate(block, start=1):
            stack += [
                layers.Conv2D(w(filters), 3, padding="same", kernel_initializer="he_normal",
                              name=f"conv{b}_{i}"),
                layers.BatchNormalization(momentum=0.9, name=f"bn{b}_{i}"),
                layers.ReLU(name=f"relu{b}_{i}"),
            ]  # fmt: skip
        stack.append(layers.MaxPooling2D(name=f"pool{b}"))
    stack += [
        layers.Flatten(name="flatten"),
        layers.Dense(w(VGG_FC), activation="relu", kernel_initializer="he_normal", name="fc1"),
        layers.Dropout(0.5, name="drop1"),
        layers.Dense(w(VGG_FC), activation="relu", kernel_initializer="he_normal", name="fc2"),
        layers.Dropout(0.5, name="drop2"),
        layers.Dense(n_classes, activation="softmax", name="scores"),
    ]
    return tf.keras.Sequential(stack, name="simplified_vgg")


def _application(name: str, min_size: int) -> Callable[[tuple[int, int, int], int], Any]:
    def build(input_shape: tuple[int, int, int], n_classes: int) -> Any:
        import tensorflow as tf

        if min(input_shape[:2]) < min_size:
            raise ArchitectureError(
                f"{name} needs inputs of at least {min_size}×{min_size} px, got "
                f"{input_shape[0]}×{input_shape[1]}; raise training.input_size"
            )
        ctor = getattr(tf.keras.applications, name)
        return ctor(
            input_shape=input_shape,
            weights=None,
            classes=n_classes,
            classifier_activation="softmax",
        )

    return build


ARCHITECTURES: dict[str, Callable[[tuple[int, int, int], int], Any]] = {
    "small_cnn": small_cnn,
    "six_module_cnn": six_module_cnn,
    "simplified_vgg": simplified_vgg,
    "mobilenet_v2": _application("MobileNetV2", 32),
    "inception_v3": _application("InceptionV3", 75),
    "xception": _application("Xception", 71),
}
"""Registry: name -> ``build(input_shape, n_classes)`` returning an uncompiled Keras model."""


def build_model(name: str, input_shape: tuple[int, int, int], n_classes: int) -> Any:
    """A fresh (randomly initialised) classifier from :data:`ARCHITECTURES`."""
    if name not in ARCHITECTURES:
        raise ArchitectureError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[name](input_shape, n_classes)


def to_model_input(images: ArrayLike, input_shape: tuple[int, ...]) -> NDArray[np.float32]:
    """A batch (``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB, uint8 0–255, or a list of images
    of any sizes) as model input:
    resized (bilinear) to the model's ``(S, S)``, channels matched, scaled to ``[0, 1]``."""
    from PIL import Image

    size_h, size_w, channels = (int(v) for v in input_shape[-3:])
    if isinstance(images, (list, tuple)):  # images of different sizes
        batch = [np.asarray(im) for im in images]
    else:
        arr = np.asarray(images)
        if arr.ndim == 2:  # one grey image
            arr = arr[None]
        if arr.ndim not in (3, 4):
            raise ArchitectureError(f"expected (N, H, W[, C]) images, got shape {arr.shape}")
        batch = list(arr)
    out = np.empty((len(batch), size_h, size_w, channels), dtype=np.float32)
    for i, img in enumerate(batch):
        im = np.asarray(img)
        if im.ndim == 3 and im.shape[-1] == 1:
            im = im[..., 0]
        if im.dtype != np.uint8:
            im = np.clip(im, 0, 255).astype(np.uint8)
        pil = Image.fromarray(im)
        pil = pil.convert("L" if channels == 1 else "RGB")
        if pil.size != (size_w, size_h):
            pil = pil.resize((size_w, size_h), Image.Resampling.BILINEAR)
        a = np.asarray(pil, dtype=np.float32) / 255.0
        out[i] = a[..., None] if channels == 1 else a
    return out
