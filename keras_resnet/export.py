"""Export trained models: a SavedModel for serving, native ``.keras`` files and TFLite.

The SavedModel is built with :class:`keras.export.ExportArchive` and carries the whole
inference path in its graph, so it loads with ``tf.saved_model.load`` (or TF Serving)
without keras_resnet or even Keras installed:

- ``serving_default`` (alias of ``serve``) takes ``images``: a uint8 batch
  ``(B, H, W, C)`` of any height and width; the graph resizes to the model's input
  size, scales to ``[0, 1]``, subtracts ``mean`` and divides by ``std``.
- ``serve_bytes`` takes ``image_bytes``: a string batch ``(B,)`` of encoded
  JPEG/PNG/BMP/GIF files, decoded and resized one by one in the graph.

Both return float32 ``probabilities`` ``(B, classes)``, ``top_k_ids`` (int32) and
``top_k_probabilities`` ``(B, k)`` and, when class names are known, ``top_k_names``.

Every writer here is all-or-nothing: it writes into a hidden temporary path beside
the destination, verifies what it wrote, and only then renames it into place. An
existing destination is replaced only with ``overwrite=True``; after a failure (or an
interrupt) the destination is as it was and no temporary files remain.

Running and inspecting the artifacts (``run_tflite``, ``predict_images``, reading a
run's ``data_info.json``) lives in :mod:`keras_resnet.serving`, which imports this
module (never the reverse).
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.atomic import atomic_path as _atomic_path
from keras_resnet.atomic import remove_path as _remove
from keras_resnet.atomic import write_json_atomic
from keras_resnet.checks import check_bool, check_choice, check_int, check_path

SERVE_ENDPOINT = "serve"  # also written as the "serving_default" signature
BYTES_ENDPOINT = "serve_bytes"
METADATA_FILE = "keras_resnet_export.json"
QUANTIZE_MODES = (None, "dynamic", "float16")
TFLITE_PIXELS = "pixels"  # TFLite input name when the normalization is embedded
_RESIZE_METHODS = ("bilinear", "bicubic", "area", "nearest", "lanczos3", "mitchellcubic")


# ----------------------------------------------------------------------------- checks


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
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
            raise ValueError(
                "`image_size` must be an int or (height, width). "
                f"Received: image_size={image_size!r}"
            )
        if min(size) < 1:
            raise ValueError(f"`image_size` must be positive. Received: image_size={image_size!r}")
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


# ------------------------------------------------------------------- preprocessing


def _resize(images: tf.Tensor, size: tuple[int, int], method: str, antialias: bool) -> tf.Tensor:
    """Resize a float batch to ``size``; images already that size pass through unchanged."""
    shape = tf.shape(images)
    same = tf.logical_and(tf.equal(shape[1], size[0]), tf.equal(shape[2], size[1]))
    out = tf.cond(
        same,
        lambda: images,
        lambda: tf.image.resize(images, size, method=method, antialias=antialias),
    )
    return tf.ensure_shape(out, [None, size[0], size[1], images.shape[-1]])


def _decode(
    data: tf.Tensor, size: tuple[int, int], channels: int, method: str, antialias: bool
) -> tf.Tensor:
    """Decode a batch of encoded images (each its own size) to a float batch at ``size``."""

    def one(encoded: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image = tf.cast(image, tf.float32)[tf.newaxis]
        return _resize(image, size, method, antialias)[0]

    spec = tf.TensorSpec((size[0], size[1], channels), tf.float32)
    return tf.map_fn(one, data, fn_output_signature=spec)


def _normalize(pixels: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
    """``(pixel / 255 - mean) / std`` on float pixels in [0, 255] (the data contract)."""
    mean_t = tf.constant(mean, tf.float32)
    std_t = tf.constant(std, tf.float32)
    return (pixels / 255.0 - mean_t) / std_t


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
    channels = arr.shape[-1]
    mean_ = _channel_stats(mean, "mean", channels, 0.0)
    std_ = _channel_stats(std, "std", channels, 1.0)
    return _normalize(tf.constant(arr, tf.float32), mean_, std_).numpy()


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
    ``saved_model.pb`` records the preprocessing and class names.

    The folder is written beside ``export_dir`` and renamed into place when complete
    (and, with ``verify``, reloaded and checked against the Keras model first).

    Args:
        model: A built single-input classifier ``keras.Model`` (``include_top=True``).
        export_dir: Destination folder.
        mean: Per-channel mean in [0, 1] pixel units of the training data (default 0).
        std: Per-channel standard deviation in [0, 1] pixel units (default 1).
        class_names: One name per class, or ``None``.
        top_k: How many top classes to return (capped at the number of classes).
        overwrite: Replace an existing ``export_dir``; otherwise it is an error.
        image_size: ``(height, width)`` to serve at; required when the model accepts
            any spatial size, otherwise it must match ``model.input_shape``.
        logits: Whether the model outputs logits (softmax is then applied in the
            graph). ``None`` detects it from the last layer's activation.
        resize_method: ``tf.image.resize`` method for images of another size.
        antialias: Antialias when downsizing (see ``tf.image.resize``).
        verify: Reload the export and compare it with ``model`` before publishing.

    Returns:
        The export folder, as a string.

    Raises:
        FileExistsError: ``export_dir`` exists and ``overwrite`` is False.
        ValueError: For a bad argument (before any work), or a failed verification.

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
    _check_model(model)
    size = _image_size(model, image_size)
    channels = int(model.input_shape[-1])
    classes = _num_classes(model)
    mean_ = _channel_stats(mean, "mean", channels, 0.0)
    std_ = _channel_stats(std, "std", channels, 1.0)
    names = _check_class_names(class_names, classes)
    k = min(check_int("top_k", top_k, min_value=1), classes)
    if logits is None:
        logits = _outputs_logits(model)
    check_bool("logits", logits)
    check_bool("antialias", antialias)
    check_bool("verify", verify)
    check_bool("overwrite", overwrite)
    check_choice("resize_method", resize_method, _RESIZE_METHODS)
    dest = _check_destination(export_dir, "export_dir", overwrite, None)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        x = _resize(tf.cast(images, tf.float32), size, resize_method, antialias)
        return _head(model(_normalize(x, mean_, std_), training=False), logits, k, names)

    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        x = _decode(image_bytes, size, channels, resize_method, antialias)
        return _head(model(_normalize(x, mean_, std_), training=False), logits, k, names)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVE_ENDPOINT,
        serve,
        input_signature=[tf.TensorSpec((None, None, None, channels), tf.uint8, name="images")],
    )
    archive.add_endpoint(
        BYTES_ENDPOINT,
        serve_bytes,
        input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")],
    )
    metadata = {
        "format": "keras_resnet.saved_model/1",
        "model_name": model.name,
        "image_size": list(size),
        "channels": channels,
        "num_classes": classes,
        "mean": list(mean_),
        "std": list(std_),
        "class_names": list(names) if names is not None else None,
        "top_k": k,
        "logits": logits,
        "resize_method": resize_method,
        "antialias": antialias,
        "signatures": {"serving_default": "images", BYTES_ENDPOINT: "image_bytes"},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    with _atomic_path(dest, overwrite=overwrite) as tmp:
        archive.write_out(str(tmp), verbose=False)
        write_json_atomic(tmp / METADATA_FILE, metadata)
        if verify:
            _verify_saved_model(tmp, model, size, channels, mean_, std_, logits)
    return str(dest)


def _tolerance(model: keras.Model) -> float:
    compute = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
    return 1e-4 if compute == "float32" else 2e-2


def _probe_images(size: tuple[int, int], channels: int, n: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size[0], size[1], channels), dtype=np.uint8)


def _verify_saved_model(
    path: Path,
    model: keras.Model,
    size: tuple[int, int],
    channels: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    logits: bool,
) -> None:
    images = _probe_images(size, channels)
    expected = np.asarray(model(normalize_images(images, mean, std), training=False), "float32")
    if logits:
        expected = tf.nn.softmax(expected, axis=-1).numpy()
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = served(images=tf.constant(images))["probabilities"].numpy()
    diff = float(np.max(np.abs(got - expected)))
    if got.dtype != np.float32 or not diff <= _tolerance(model):
        raise ValueError(
            f"The exported SavedModel disagrees with the Keras model (max abs difference "
            f"{diff:.3g}, dtype {got.dtype}); nothing was written."
        )


# ------------------------------------------------------------------------- .keras


def save_keras_model(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    verify: bool = True,
) -> str:
    """Save ``model`` as a native ``.keras`` file, all or nothing.

    The file is written beside ``path`` and renamed into place; with ``verify`` it is
    first reloaded with ``keras.saving.load_model(..., safe_mode=True)`` and must give
    the same outputs as ``model`` on a probe batch.

    Args:
        model: Any ``keras.Model``.
        path: Destination file; must end with ``.keras``.
        overwrite: Replace an existing file; otherwise it is an error.
        verify: Reload in safe mode and compare outputs before publishing.

    Returns:
        The file path, as a string.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: For a bad argument or a failed verification.

    Example:
        >>> import tempfile
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(16, 16, 1), classes=3)
        >>> path = save_keras_model(model, tempfile.mkdtemp() + "/tiny.keras")
        >>> load_keras_model(path).count_params() == model.count_params()
        True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    check_bool("overwrite", overwrite)
    check_bool("verify", verify)
    dest = _check_destination(path, "path", overwrite, ".keras")
    with _atomic_path(dest, overwrite=overwrite) as tmp:
        model.save(str(tmp))
        if verify:
            _verify_keras_file(tmp, model)
    return str(dest)


def load_keras_model(path: str | os.PathLike, *, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file in safe mode, with keras_resnet's custom layers registered.

    Args:
        path: A ``.keras`` file.
        compile: Restore the training configuration too.

    Returns:
        The ``keras.Model``.

    Example:
        >>> import tempfile
        >>> from keras_resnet import create_model
        >>> path = save_keras_model(create_model("_tiny", input_shape=(8, 8, 1)),
        ...                         tempfile.mkdtemp() + "/m.keras")
        >>> load_keras_model(path).input_shape
        (None, 8, 8, 1)
    """
    import keras_resnet.layers  # noqa: F401 - registers the custom layers for loading

    file = check_path("path", path)
    check_bool("compile", compile)
    if file.suffix != ".keras":
        raise ValueError(f"`path` must be a '.keras' file. Received: path={str(path)!r}")
    if not file.is_file():
        raise FileNotFoundError(f"No such .keras file. Received: path={str(path)!r}")
    if not zipfile.is_zipfile(file):
        raise ValueError(
            f"{str(path)!r} is not a valid Keras archive: not a zip file (empty, truncated or "
            f"another format). Received: path={str(path)!r}"
        )
    try:
        return keras.saving.load_model(str(file), compile=compile, safe_mode=True)
    except PermissionError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        KeyError,
        OSError,
        json.JSONDecodeError,
    ) as err:
        # corrupt bytes inside the zip surface as zip, zlib, h5py (OSError) or JSON errors
        raise ValueError(
            f"{str(path)!r} is not a valid Keras archive ({type(err).__name__}: {err}). "
            f"Received: path={str(path)!r}"
        ) from None


def _probe_floats(model: keras.Model) -> np.ndarray | None:
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) < 2:
        return None
    dims = [d if d is not None else 32 for d in shape[1:]]
    return np.random.default_rng(0).normal(size=(2, *dims)).astype("float32")


def _verify_keras_file(path: Path, model: keras.Model) -> None:
    reloaded = load_keras_model(path)
    probe = _probe_floats(model) if len(model.inputs) == 1 else None
    if probe is None:
        return
    expected = np.asarray(model(probe, training=False), "float32")
    got = np.asarray(reloaded(probe, training=False), "float32")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= 1e-6:
        raise ValueError(
            f"The reloaded .keras model disagrees with the original (max abs difference "
            f"{diff:.3g}); nothing was written."
        )


# --------------------------------------------------------------------------- TFLite


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    quantize: str | None = None,
    overwrite: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    image_size: int | tuple[int, int] | None = None,
    verify: bool = True,
) -> str:
    """Convert ``model`` to a TensorFlow Lite flatbuffer, all or nothing.

    The model is exported with :class:`keras.export.ExportArchive` (outputs cast to
    float32, so mixed-precision models work) and converted with
    ``tf.lite.TFLiteConverter.from_saved_model``, the path Keras' own
    ``model.export(format="litert")`` takes. Without ``mean``/``std`` the TFLite model
    keeps the Keras model's input (signature input ``inputs``): float32
    ``(B, H, W, C)`` already normalized (see :func:`normalize_images`). With ``mean``
    or ``std`` the normalization is part of the model and its input (``pixels``) is
    float32 pixel values in [0, 255] at the model's size. The output is the model's
    output in float32.

    Args:
        model: A built single-input ``keras.Model``.
        path: Destination file; must end with ``.tflite``.
        quantize: ``None`` (float32), ``"dynamic"`` (dynamic-range: int8 weights,
            float activations) or ``"float16"`` (float16 weights).
        overwrite: Replace an existing file; otherwise it is an error.
        mean: Per-channel mean in [0, 1] pixel units: embed the normalization.
        std: Per-channel standard deviation in [0, 1] pixel units: embed it too.
        image_size: ``(height, width)``; required when the model accepts any size.
        verify: Run the converted model and check it against ``model`` (float32:
            max abs difference <= 1e-4; quantized: finite outputs of the right shape).

    Returns:
        The file path, as a string.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: For a bad argument or a failed verification.

    Example:
        >>> import tempfile, numpy as np
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(16, 16, 1), classes=3)
        >>> from keras_resnet.serving import run_tflite
        >>> path = export_tflite(model, tempfile.mkdtemp() + "/tiny.tflite", quantize="dynamic")
        >>> run_tflite(path, np.zeros((2, 16, 16, 1), "float32")).shape
        (2, 3)
    """
    _check_model(model)
    check_choice("quantize", quantize, QUANTIZE_MODES)
    size = _image_size(model, image_size)
    channels = int(model.input_shape[-1])
    embed = mean is not None or std is not None
    mean_ = _channel_stats(mean, "mean", channels, 0.0)
    std_ = _channel_stats(std, "std", channels, 1.0)
    check_bool("overwrite", overwrite)
    check_bool("verify", verify)
    dest = _check_destination(path, "path", overwrite, ".tflite")

    def serve(x: tf.Tensor) -> tf.Tensor:
        if embed:
            x = _normalize(x, mean_, std_)
        return tf.cast(model(x, training=False), tf.float32)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVE_ENDPOINT,
        serve,
        input_signature=[
            tf.TensorSpec(
                (None, *size, channels), tf.float32, name=TFLITE_PIXELS if embed else "inputs"
            )
        ],
    )
    with _atomic_path(dest, overwrite=overwrite) as tmp:
        saved = tmp.with_name(tmp.name + ".saved_model")
        try:
            archive.write_out(str(saved), verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            if quantize == "dynamic":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quantize == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            flatbuffer = converter.convert()
        finally:
            _remove(saved)
        tmp.write_bytes(flatbuffer)
        if verify:
            pixels = _probe_images(size, channels)
            normalized = normalize_images(pixels, mean_, std_)
            got = _tflite_call(
                _tflite_interpreter(tmp), pixels.astype("float32") if embed else normalized
            )
            expected = np.asarray(model(normalized, training=False), "float32")
            diff = float(np.max(np.abs(got - expected)))
            ok = np.all(np.isfinite(got)) and got.shape == expected.shape
            if not ok or (quantize is None and not diff <= max(1e-4, _tolerance(model))):
                raise ValueError(
                    f"The TFLite model disagrees with the Keras model (max abs difference "
                    f"{diff:.3g}); nothing was written."
                )
    return str(dest)


# The interpreter helpers live here because export_tflite's verification runs the
# converted model; keras_resnet.serving builds run_tflite and predict_images on them.


def _tflite_interpreter(path: str | os.PathLike, num_threads: int = 1) -> Any:
    if not Path(path).is_file():
        raise FileNotFoundError(f"No such .tflite file. Received: path={str(path)!r}")
    # tf.lite.Interpreter is deprecated in favour of the separate ai-edge-litert
    # package, which is not a dependency here; it still ships with TensorFlow.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)


def _tflite_call(interpreter: Any, inputs: np.ndarray) -> np.ndarray:
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    x = np.asarray(inputs, dtype=inp["dtype"])
    expected = tuple(int(d) for d in inp["shape_signature"][1:])
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"`inputs` must have shape (batch, {', '.join(map(str, expected))}). "
            f"Received: inputs.shape={x.shape}"
        )
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).copy()
