"""Export trained models: a SavedModel for serving, native ``.keras`` files and TFLite.

The SavedModel is built with :class:`keras.export.ExportArchive` and carries the whole
inference path in its graph, so it loads with ``tf.saved_model.load`` (or TF Serving)
without keras_resnet or even Keras installed:

- ``serving_default`` (alias of ``serve``) takes ``images``: a uint8 batch
  ``(B, H, W, C)`` of any height and width; the graph resizes to the model's input
  size, scales to ``[0, 1]``, subtracts ``mean`` and divides by ``std``.
- ``serve_bytes`` takes ``image_bytes``: a string batch ``(B,)`` of encoded
  JPEG/PNG/BMP/GIF files, decoded (:func:`keras_resnet.utils.images.decode_image`: any
  of them to the model's channels) and resized one by one in the graph.

Both return float32 ``probabilities`` ``(B, classes)``, ``top_k_ids`` (int32) and
``top_k_probabilities`` ``(B, k)`` and, when class names are known, ``top_k_names``.

Every writer here is all-or-nothing: it writes into a hidden temporary path beside
the destination, verifies what it wrote, and only then renames it into place. An
existing destination is replaced only with ``overwrite=True``; after a failure (or an
interrupt) the destination is as it was and no temporary files remain.

Running and inspecting the artifacts (``run_tflite``, ``predict_images``, reading a
run's ``data_info.json``) lives in :mod:`keras_resnet.export.serving`, which imports this
module (never the reverse).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.export.common import (
    BYTES_ENDPOINT,
    METADATA_FILE,
    SERVE_ENDPOINT,
    channel_stats,
    check_class_names,
    check_export_backend,
    check_model,
    decode_images,
    normalize,
    num_classes,
    outputs_logits,
    probe_images,
    resize_images,
    serving_size,
    tolerance,
)
from keras_resnet.saving import load_keras_model
from keras_resnet.utils.atomic import atomic_path, check_destination, write_json_atomic
from keras_resnet.utils.checks import check_bool, check_choice, check_int

_RESIZE_METHODS = ("bilinear", "bicubic", "area", "nearest", "lanczos3", "mitchellcubic")


# ------------------------------------------------------------------- preprocessing


def normalize_images(
    images: np.ndarray, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """Normalize uint8 images exactly as the exported serving graph does.

    Args:
        images: uint8 (or float in [0, 255]) array ``(B, H, W, C)``.
        mean: Per-channel mean in [0, 1] pixel units (default 0).
        std: Per-channel standard deviation in [0, 1] pixel units (default 1).

    Returns:
        float32 array ``(pixel / 255 - mean) / std``, the model's input.

    Example:
        >>> x = normalize_images(np.full((1, 2, 2, 1), 255, np.uint8), mean=[0.5], std=[0.5])
        >>> float(x.max())
        1.0
    """
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(
            f"`images` must be (batch, height, width, channels). Received: shape={arr.shape}"
        )
    mean_, std_ = channel_stats(mean, std, arr.shape[-1])
    return normalize(tf.constant(arr, tf.float32), mean_, std_).numpy()


def _head(
    outputs: tf.Tensor, logits: bool, top_k: int, names: tuple[str, ...] | None
) -> dict[str, tf.Tensor]:
    # Mixed-precision models may compute in float16/bfloat16: serve float32.
    probs = tf.cast(outputs, tf.float32)
    if logits:
        probs = tf.nn.softmax(probs, axis=-1)
    top = tf.math.top_k(probs, k=top_k)
    result = {
        "probabilities": probs,
        "top_k_ids": tf.cast(top.indices, tf.int32),
        "top_k_probabilities": top.values,
    }
    if names is not None:
        result["top_k_names"] = tf.gather(tf.constant(names), top.indices)
    return result


# ---------------------------------------------------------------------- SavedModel


@dataclass(frozen=True)
class _Serving:
    """The checked serving arguments of :func:`export_saved_model`.

    The fields are named and ordered like the keys they fill in the metadata file.
    """

    image_size: tuple[int, int]
    channels: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None
    top_k: int
    logits: bool
    resize_method: str
    antialias: bool

    def metadata(self, model: keras.Model) -> dict[str, Any]:
        return {
            "format": "keras_resnet.saved_model/1",
            "model_name": model.name,
            **asdict(self),  # tuples are written as JSON lists
            "signatures": {"serving_default": "images", BYTES_ENDPOINT: "image_bytes"},
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        }


def _serving_archive(model: keras.Model, spec: _Serving) -> keras.export.ExportArchive:
    """The ``serve`` (uint8 images) and ``serve_bytes`` (encoded files) endpoints."""

    def run(x: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(normalize(x, spec.mean, spec.std), training=False)
        return _head(outputs, spec.logits, spec.top_k, spec.class_names)

    resize = (spec.resize_method, spec.antialias)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return run(resize_images(tf.cast(images, tf.float32), spec.image_size, *resize))

    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return run(decode_images(image_bytes, spec.image_size, spec.channels, *resize))

    images = tf.TensorSpec((None, None, None, spec.channels), tf.uint8, name="images")
    image_bytes = tf.TensorSpec((None,), tf.string, name="image_bytes")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVE_ENDPOINT, serve, input_signature=[images])
    archive.add_endpoint(BYTES_ENDPOINT, serve_bytes, input_signature=[image_bytes])
    return archive


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    top_k: int = 5,
    overwrite: bool = False,
    image_size: int | tuple[int, int] | None = None,
    logits: bool | None = None,
    resize_method: str = "bilinear",
    antialias: bool = True,
    verify: bool = True,
) -> str:
    """Export a classifier as a self-contained TensorFlow SavedModel for serving.

    Built with :class:`keras.export.ExportArchive`. The ``serving_default`` signature
    takes ``images``, a uint8 batch of any height and width (resized to the model's
    input size in the graph); ``serve_bytes`` takes ``image_bytes``, a batch of encoded
    JPEG/PNG/BMP/GIF strings. Both scale pixels to [0, 1], apply ``(x - mean) / std``,
    run the model and return float32 ``probabilities``, ``top_k_ids`` (int32),
    ``top_k_probabilities`` and, with ``class_names``, ``top_k_names``. The artifact
    loads without keras_resnet or Keras. A ``keras_resnet_export.json`` file beside
    ``saved_model.pb`` records the preprocessing and class names. The folder is
    written beside ``export_dir`` and renamed into place when complete.

    Args:
        model: A built single-input classifier ``keras.Model`` (``include_top=True``).
        export_dir: Destination folder.
        mean: Per-channel mean in [0, 1] pixel units of the training data (default 0).
        std: Per-channel standard deviation in [0, 1] pixel units (default 1).
        class_names: One name per class, or ``None``.
        top_k: How many top classes to return (capped at the number of classes).
        overwrite: Replace an existing ``export_dir`` (else ``FileExistsError``).
        image_size: ``(height, width)`` to serve at; required when the model accepts
            any spatial size, otherwise it must match ``model.input_shape``.
        logits: Whether the model outputs logits (softmax is then applied in the
            graph). ``None`` detects it from the last layer's activation.
        resize_method: ``tf.image.resize`` method for images of another size.
        antialias: Antialias when downsizing (see ``tf.image.resize``).
        verify: Reload the export and compare it with ``model`` before publishing (a
            mismatch raises ``ValueError``, as does a bad argument, before any work).

    Returns:
        The export folder, as a string.

    Example:
        >>> import tempfile, numpy as np, tensorflow as tf
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(16, 16, 1), classes=3)
        >>> path = export_saved_model(model, tempfile.mkdtemp() + "/sm", class_names=list("abc"))
        >>> served = tf.saved_model.load(path).signatures["serving_default"]
        >>> out = served(images=tf.zeros((2, 40, 30, 1), tf.uint8))
        >>> out["probabilities"].shape.as_list(), out["top_k_names"].shape.as_list()
        ([2, 3], [2, 3])
    """
    check_export_backend("A SavedModel")
    spec = _serving_spec(
        model, image_size, mean, std, class_names, top_k, logits, resize_method, antialias
    )
    check_bool("verify", verify)
    dest = check_destination(export_dir, "export_dir", overwrite, None)
    archive = _serving_archive(model, spec)
    with atomic_path(dest, overwrite=overwrite) as tmp:
        archive.write_out(str(tmp), verbose=False)
        write_json_atomic(tmp / METADATA_FILE, spec.metadata(model))
        if verify:
            _verify_saved_model(tmp, model, spec)
    return str(dest)


def export_run(run_dir: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Write a finished run's serving SavedModel into ``run_dir/saved_model``.

    The run's ``model.keras`` is exported with the preprocessing of its
    ``data_info.json`` (mean, std, class names) and up to 5 top classes; the command
    line's ``train`` and ``tune`` call this after training (unless ``--no-export``).

    Args:
        run_dir: A run folder with ``model.keras`` and ``data_info.json``.
        overwrite: Replace an existing ``saved_model/`` (else ``FileExistsError``).

    Returns:
        The path of the SavedModel folder, as a string.

    Example:
        >>> import os, tempfile
        >>> from keras_resnet import TrainConfig, train
        >>> run = os.path.join(tempfile.mkdtemp(), "run")
        >>> _ = train("_tiny", "digits", TrainConfig(epochs=1), output_dir=run, verbose=0)
        _tiny on digits: ...
        >>> os.path.basename(export_run(run))
        'saved_model'
    """
    from keras_resnet.export.serving import load_run_preprocessing

    check_export_backend("A SavedModel")
    folder = Path(os.fspath(run_dir))
    prep = load_run_preprocessing(folder)
    model = load_keras_model(folder / "model.keras")
    classes = prep["num_classes"] or num_classes(model)
    return export_saved_model(
        model,
        folder / "saved_model",
        mean=prep["mean"],
        std=prep["std"],
        class_names=prep["class_names"],
        top_k=min(5, classes),
        overwrite=overwrite,
    )


def _serving_spec(
    model, image_size, mean, std, class_names, top_k, logits, resize_method, antialias
) -> _Serving:
    """The checked arguments of :func:`export_saved_model`, before any work."""
    check_model(model)
    size = serving_size(model, image_size)
    channels = int(model.input_shape[-1])
    classes = num_classes(model)
    mean_, std_ = channel_stats(mean, std, channels)
    names = check_class_names(class_names, classes)
    k = min(check_int("top_k", top_k, min_value=1), classes)
    if logits is None:
        logits = outputs_logits(model)
    check_bool("logits", logits)
    check_bool("antialias", antialias)
    check_choice("resize_method", resize_method, _RESIZE_METHODS)
    return _Serving(
        size, channels, classes, mean_, std_, names, k, logits, resize_method, antialias
    )


def _verify_saved_model(path: Path, model: keras.Model, spec: _Serving) -> None:
    images = probe_images(spec.image_size, spec.channels)
    normalized = normalize_images(images, spec.mean, spec.std)
    expected = np.asarray(model(normalized, training=False), "float32")
    if spec.logits:
        expected = tf.nn.softmax(expected, axis=-1).numpy()
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = served(images=tf.constant(images))["probabilities"].numpy()
    diff = float(np.max(np.abs(got - expected)))
    if got.dtype != np.float32 or not diff <= tolerance(model):
        raise ValueError(
            f"The exported SavedModel disagrees with the Keras model (max abs difference "
            f"{diff:.3g}, dtype {got.dtype}); nothing was written."
        )
