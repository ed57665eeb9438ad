"""Argument checks, preprocessing and verification shared by the export writers and serving.

:mod:`keras_resnet.export.saved_model`, :mod:`keras_resnet.export.tflite` and
:mod:`keras_resnet.export.serving` import these; users call those modules' functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.utils.checks import check_image_size
from keras_resnet.utils.images import decode_image

SERVE_ENDPOINT = "serve"  # also written as the "serving_default" signature
BYTES_ENDPOINT = "serve_bytes"
METADATA_FILE = "keras_resnet_export.json"

# ----------------------------------------------------------------------------- checks


def check_export_backend(what: str, skip: str | None = None) -> None:
    """Refuse ``what`` (a SavedModel or TFLite export) unless Keras runs on TensorFlow.

    The serving graph resizes, decodes and normalizes images with TensorFlow ops around
    the model call, so it is built on the TensorFlow backend only; on JAX and PyTorch
    the ``.keras`` file is written (it loads on any backend) and exported from there.

    Args:
        what: What is refused, for the message.
        skip: The option that leaves the export out (named in the message), if any.

    Example:
        >>> check_export_backend("A SavedModel") is None  # on TensorFlow: nothing to refuse
        True
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        leave_out = f"Pass {skip} and export" if skip else "Save it and export"
        raise ValueError(
            f"{what} is written on the TensorFlow backend only; this process runs Keras on "
            f"{backend}, where the supported format is keras (.keras). {leave_out} the "
            ".keras file with KERAS_BACKEND=tensorflow python -m keras_resnet export. "
            f"Received: KERAS_BACKEND={backend}"
        )


def check_model(model: Any) -> None:
    """Check that ``model`` is a ``keras.Model`` with one image input and one output.

    Example:
        >>> check_model(keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten()]))
        >>> check_model("model.keras")
        Traceback (most recent call last):
        TypeError: `model` must be a keras.Model. Received: model=str
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "`model` must have one image input and one output. Received: "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    if len(model.input_shape) != 4:
        raise ValueError(
            "`model` must take images (batch, height, width, channels). "
            f"Received: model.input_shape={model.input_shape}"
        )
    if model.input_shape[-1] is None:
        raise ValueError(
            f"`model` must have a known channel count. Received: input_shape={model.input_shape}"
        )


def serving_size(model: keras.Model, image_size: int | Sequence[int] | None) -> tuple[int, int]:
    """The (height, width) images are resized to: the model's, or ``image_size``.

    Example:
        >>> inputs = keras.Input((None, None, 3))
        >>> serving_size(keras.Model(inputs, keras.layers.Identity()(inputs)), 32)
        (32, 32)
    """
    height, width = model.input_shape[1:3]
    if image_size is not None:
        size = check_image_size("image_size", image_size)
        for given, fixed, what in ((size[0], height, "height"), (size[1], width, "width")):
            if fixed is not None and given != fixed:
                raise ValueError(
                    f"`image_size` {what} {given} differs from the model's input {what} "
                    f"{fixed}. Received: image_size={image_size!r}, "
                    f"model.input_shape={model.input_shape}"
                )
        return size
    if height is None or width is None:
        raise ValueError(
            "The model accepts any spatial size, so pass the serving size explicitly, "
            f"e.g. image_size=(224, 224). Received: model.input_shape={model.input_shape}, "
            "image_size=None"
        )
    return int(height), int(width)


def channel_stats(
    mean: Any, std: Any, channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``mean`` and ``std``: one finite value per channel (a scalar repeats).

    ``None`` gives the defaults, a mean of 0 and a standard deviation of 1.

    Example:
        >>> channel_stats(0.5, None, 3)
        ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    """
    checked = []
    for name, value, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        if value is None:
            checked.append((default,) * channels)
            continue
        try:
            stats = tuple(float(v) for v in np.ravel(np.asarray(value, dtype="float64")))
        except (TypeError, ValueError):
            raise TypeError(
                f"`{name}` must be a sequence of {channels} numbers. Received: {name}={value!r}"
            ) from None
        if len(stats) == 1:
            stats = stats * channels
        if len(stats) != channels or not all(math.isfinite(s) for s in stats):
            raise ValueError(
                f"`{name}` must have one finite value per channel ({channels}), in [0, 1] "
                f"pixel units. Received: {name}={value!r}"
            )
        if name == "std" and min(stats) <= 0:
            raise ValueError(f"`std` must be positive. Received: std={value!r}")
        checked.append(stats)
    return checked[0], checked[1]


def check_class_names(class_names: Any, classes: int) -> tuple[str, ...] | None:
    """The class names as a tuple, one per class (``None`` stays ``None``).

    Example:
        >>> check_class_names(["cat", "dog"], 2)
        ('cat', 'dog')
    """
    if class_names is None:
        return None
    if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
        raise TypeError(
            f"`class_names` must be a sequence of strings. Received: class_names={class_names!r}"
        )
    names = tuple(class_names)
    if len(names) != classes:
        raise ValueError(
            f"`class_names` must name each of the model's {classes} classes. "
            f"Received: {len(names)} class_names"
        )
    return names


def num_classes(model: keras.Model) -> int:
    """Classes of a classifier whose output is ``(batch, classes)``.

    Example:
        >>> num_classes(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
        3
    """
    shape = model.output_shape
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            "`model` must end in a classifier with output (batch, classes), e.g. "
            f"include_top=True. Received: model.output_shape={shape}"
        )
    return int(shape[-1])


def outputs_logits(model: keras.Model) -> bool:
    """Whether the model ends in a linear activation (logits) rather than probabilities.

    Example:
        >>> outputs_logits(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
        True
    """
    # A last layer without an `activation` (e.g. keras.layers.Softmax) is taken to
    # output probabilities; pass `logits=` explicitly to override.
    activation = getattr(model.layers[-1], "activation", None)
    return activation is not None and getattr(activation, "__name__", "") == "linear"


# ------------------------------------------------------------------ normalization


def normalize(pixels: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
    """``(pixel / 255 - mean) / std`` on float pixels in [0, 255] (the data contract).

    Example:
        >>> float(normalize(tf.constant([[255.0]]), [0.5], [0.5])[0, 0])
        1.0
    """
    return (pixels / 255.0 - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


# ------------------------------------------------------------------ verification


def tolerance(model: keras.Model) -> float:
    """How far an exported artifact's outputs may be from the model's (by compute dtype).

    Example:
        >>> tolerance(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
        0.0001
    """
    compute = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
    return 1e-4 if compute == "float32" else 2e-2


def probe_images(size: tuple[int, int], channels: int) -> np.ndarray:
    """Two seeded random uint8 images, the batch the writers verify their artifacts on.

    Example:
        >>> probe_images((4, 5), 3).shape
        (2, 4, 5, 3)
    """
    return np.random.default_rng(0).integers(0, 256, (2, *size, channels), dtype=np.uint8)


# ------------------------------------------------------------------ preprocessing


def resize_images(
    images: tf.Tensor, size: tuple[int, int], method: str, antialias: bool
) -> tf.Tensor:
    """Resize a float batch to ``size``; images already that size pass through unchanged.

    Example:
        >>> tuple(resize_images(tf.zeros((1, 8, 8, 3)), (4, 4), "bilinear", True).shape)
        (1, 4, 4, 3)
    """
    shape = tf.shape(images)
    same = tf.logical_and(tf.equal(shape[1], size[0]), tf.equal(shape[2], size[1]))

    def resize() -> tf.Tensor:
        return tf.image.resize(images, size, method=method, antialias=antialias)

    out = tf.cond(same, lambda: images, resize)
    return tf.ensure_shape(out, [None, size[0], size[1], images.shape[-1]])


def decode_images(
    data: tf.Tensor, size: tuple[int, int], channels: int, method: str, antialias: bool
) -> tf.Tensor:
    """Decode a batch of encoded images (each its own size) to a float batch at ``size``.

    Example:
        >>> png = tf.io.encode_png(tf.zeros((6, 6, 3), tf.uint8))
        >>> tuple(decode_images(tf.stack([png]), (4, 4), 3, "bilinear", True).shape)
        (1, 4, 4, 3)
    """

    def one(encoded: tf.Tensor) -> tf.Tensor:
        image = tf.cast(decode_image(encoded, channels), tf.float32)[tf.newaxis]
        return resize_images(image, size, method, antialias)[0]

    return tf.map_fn(one, data, fn_output_signature=tf.TensorSpec((*size, channels), tf.float32))
