"""Argument checks and small helpers shared by the SavedModel and TFLite writers.

Private: :mod:`keras_resnet.export` and :mod:`keras_resnet.tflite` import these; users
call those modules' public functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.checks import check_bool, check_image_size, check_path

SERVE_ENDPOINT = "serve"  # also written as the "serving_default" signature

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
        >>> check_export_backend("A SavedModel") if keras.backend.backend() == "tensorflow" else 0
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        leave_out = f"Pass {skip} (export=False) and export" if skip else "Save it and export"
        raise ValueError(
            f"{what} is written on the TensorFlow backend only; this process runs Keras on "
            f"{backend}, where the supported format is keras (.keras). {leave_out} the "
            ".keras file with KERAS_BACKEND=tensorflow python -m keras_resnet export. "
            f"Received: KERAS_BACKEND={backend}"
        )


def _check_model(model: Any) -> None:
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


def _image_size(model: keras.Model, image_size: int | Sequence[int] | None) -> tuple[int, int]:
    """The (height, width) images are resized to: the model's, or ``image_size``."""
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


def _channel_stats(value: Any, name: str, channels: int, default: float) -> tuple[float, ...]:
    if value is None:
        return (default,) * channels
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
            f"`{name}` must have one finite value per channel ({channels}), in [0, 1] pixel "
            f"units. Received: {name}={value!r}"
        )
    if name == "std" and min(stats) <= 0:
        raise ValueError(f"`std` must be positive. Received: std={value!r}")
    return stats


def _check_class_names(class_names: Any, classes: int) -> tuple[str, ...] | None:
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


def _num_classes(model: keras.Model) -> int:
    shape = model.output_shape
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            "`model` must end in a classifier with output (batch, classes), e.g. "
            f"include_top=True. Received: model.output_shape={shape}"
        )
    return int(shape[-1])


def _outputs_logits(model: keras.Model) -> bool:
    """Whether the model ends in a linear activation (logits) rather than probabilities."""
    # A last layer without an `activation` (e.g. keras.layers.Softmax) is taken to
    # output probabilities; pass `logits=` explicitly to override.
    activation = getattr(model.layers[-1], "activation", None)
    return activation is not None and getattr(activation, "__name__", "") == "linear"


# ------------------------------------------------------------------ atomic destination


def _check_destination(path: Any, name: str, overwrite: bool, suffix: str | None) -> Path:
    """The checked destination ``path``; it may exist only with ``overwrite=True``."""
    check_bool("overwrite", overwrite)
    dest = check_path(name, path)
    if suffix is not None and dest.suffix != suffix:
        raise ValueError(f"`{name}` must end with '{suffix}'. Received: {name}={str(path)!r}")
    if dest.name in ("", ".", ".."):
        raise ValueError(f"`{name}` must name a file or folder. Received: {name}={str(path)!r}")
    if (dest.exists() or dest.is_symlink()) and not overwrite:
        raise FileExistsError(
            f"{str(dest)!r} already exists; pass overwrite=True (--overwrite) to replace it. "
            f"Received: {name}={str(path)!r}, overwrite=False"
        )
    return dest


def _normalize(pixels: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
    """``(pixel / 255 - mean) / std`` on float pixels in [0, 255] (the data contract)."""
    mean_t = tf.constant(mean, tf.float32)
    std_t = tf.constant(std, tf.float32)
    return (pixels / 255.0 - mean_t) / std_t


# ------------------------------------------------------------------ verification


def _tolerance(model: keras.Model) -> float:
    compute = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
    return 1e-4 if compute == "float32" else 2e-2


def _probe_images(size: tuple[int, int], channels: int) -> np.ndarray:
    """Two seeded random uint8 images, the batch the writers verify their artifacts on."""
    return np.random.default_rng(0).integers(0, 256, (2, *size, channels), dtype=np.uint8)
