"""Convert Keras models to TensorFlow Lite flatbuffers, all or nothing.

:func:`export_tflite` is also importable from :mod:`keras_resnet.export`; running the
converted file lives in :mod:`keras_resnet.export.serving` (``run_tflite``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.export.common import (
    SERVE_ENDPOINT,
    channel_stats,
    check_export_backend,
    check_model,
    normalize,
    probe_images,
    serving_size,
    tolerance,
)
from keras_resnet.utils.atomic import atomic_path, check_destination, remove_path
from keras_resnet.utils.checks import check_bool, check_choice

QUANTIZE_MODES = (None, "dynamic", "float16")
TFLITE_PIXELS = "pixels"  # TFLite input name when the normalization is embedded


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
        The path of the ``.tflite`` file, as a string.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: For a bad argument or a failed verification.

    Example:
        >>> import tempfile, numpy as np
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(16, 16, 1), classes=3)
        >>> from keras_resnet.export.serving import run_tflite
        >>> path = export_tflite(model, tempfile.mkdtemp() + "/tiny.tflite", quantize="dynamic")
        >>> run_tflite(path, np.zeros((2, 16, 16, 1), "float32")).shape
        (2, 3)
    """
    check_export_backend("A TFLite file")
    check_model(model)
    check_choice("quantize", quantize, QUANTIZE_MODES)
    size = serving_size(model, image_size)
    channels = int(model.input_shape[-1])
    embed = mean is not None or std is not None
    mean_, std_ = channel_stats(mean, std, channels)
    check_bool("verify", verify)
    dest = check_destination(path, "path", overwrite, ".tflite")
    archive = _tflite_archive(model, size, channels, mean_, std_ if embed else None)
    with atomic_path(dest, overwrite=overwrite) as tmp:
        tmp.write_bytes(_convert(archive, tmp.with_name(tmp.name + ".saved_model"), quantize))
        if verify:
            _verify_tflite(tmp, model, size, mean_, std_, embed, quantize)
    return str(dest)


def _tflite_archive(
    model: keras.Model,
    size: tuple[int, int],
    channels: int,
    mean: tuple[float, ...],
    std: tuple[float, ...] | None,
) -> keras.export.ExportArchive:
    """The float32 serving endpoint; with ``std`` the normalization is embedded too."""
    embed = std is not None

    def serve(x: tf.Tensor) -> tf.Tensor:
        if embed:
            x = normalize(x, mean, std)
        return tf.cast(model(x, training=False), tf.float32)

    name = TFLITE_PIXELS if embed else "inputs"
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, *size, channels), tf.float32, name=name)
    archive.add_endpoint(SERVE_ENDPOINT, serve, input_signature=[spec])
    return archive


def _convert(archive: keras.export.ExportArchive, saved: Path, quantize: str | None) -> bytes:
    """Write ``archive`` to the scratch folder ``saved``, convert it, remove the folder."""
    try:
        archive.write_out(str(saved), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if quantize is not None:  # "dynamic" or "float16"
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    finally:
        remove_path(saved)


def _verify_tflite(
    path: Path,
    model: keras.Model,
    size: tuple[int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    embed: bool,
    quantize: str | None,
) -> None:
    pixels = probe_images(size, int(model.input_shape[-1]))
    normalized = normalize(tf.constant(pixels, tf.float32), mean, std).numpy()
    got = tflite_call(tflite_interpreter(path), pixels.astype("float32") if embed else normalized)
    expected = np.asarray(model(normalized, training=False), "float32")
    diff = float(np.max(np.abs(got - expected)))
    ok = np.all(np.isfinite(got)) and got.shape == expected.shape
    if not ok or (quantize is None and not diff <= max(1e-4, tolerance(model))):
        raise ValueError(
            f"The TFLite model disagrees with the Keras model (max abs difference "
            f"{diff:.3g}); nothing was written."
        )


# The interpreter helpers live here because export_tflite's verification runs the
# converted model; keras_resnet.export.serving builds run_tflite and predict_images on them.


def tflite_interpreter(path: str | os.PathLike, num_threads: int = 1) -> Any:
    """A ``tf.lite.Interpreter`` of a ``.tflite`` file; a bad file is a ``ValueError``.

    Args:
        path: The ``.tflite`` file.
        num_threads: Threads of the interpreter.

    Example:
        >>> tflite_interpreter("no/such.tflite")
        Traceback (most recent call last):
        FileNotFoundError: No such .tflite file. Received: path='no/such.tflite'
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"No such .tflite file. Received: path={str(path)!r}")
    # tf.lite.Interpreter is deprecated in favour of the separate ai-edge-litert
    # package, which is not a dependency here; it still ships with TensorFlow.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)
        except (ValueError, RuntimeError) as err:  # an empty, truncated or foreign file
            reason = (str(err).strip() or type(err).__name__).splitlines()[0]
            raise ValueError(f"{str(path)!r} is not a valid TFLite model ({reason}).") from None


def tflite_call(interpreter: Any, inputs: np.ndarray) -> np.ndarray:
    """Run a TFLite interpreter on a batch (resized to it), returning float32 outputs.

    Args:
        interpreter: From :func:`tflite_interpreter`.
        inputs: A batch in the dtype and shape of the model's input.

    Example:
        >>> import tempfile
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(16, 16, 1), classes=3)
        >>> path = export_tflite(model, tempfile.mkdtemp() + "/m.tflite")
        >>> images = np.zeros((2, 16, 16, 1), "uint8")
        >>> tflite_call(tflite_interpreter(path), images).shape
        (2, 3)
    """
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
