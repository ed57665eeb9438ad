"""Use exported and saved models: run TFLite files, read run folders, classify images.

The inference side of :mod:`keras_resnet.export` (which writes the artifacts):

- :func:`run_tflite` and :func:`tflite_embeds_normalization` run and inspect a
  ``.tflite`` file from :func:`keras_resnet.export.export_tflite`;
- :func:`load_run_preprocessing` reads the mean/std and class names a training run
  recorded in its ``data_info.json``;
- :func:`resolve_model_path` tells a SavedModel folder, a ``.keras`` file, a ``.tflite``
  file and a run folder apart;
- :func:`predict_images` classifies image files with any of them (the ``predict``
  command).

Imports go one way: this module uses :mod:`keras_resnet.export` and its helper modules,
never the reverse.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_resnet.export.common import (
    BYTES_ENDPOINT,
    METADATA_FILE,
    channel_stats,
    check_model,
    decode_images,
    normalize,
    outputs_logits,
    serving_size,
)
from keras_resnet.export.tflite import TFLITE_PIXELS, tflite_call, tflite_interpreter
from keras_resnet.saving import load_keras_model
from keras_resnet.utils.atomic import read_json
from keras_resnet.utils.checks import check_choice, check_int, check_path
from keras_resnet.utils.images import decode_image

DATA_INFO_FILE = "data_info.json"  # what `train --output` writes beside model.keras

# --------------------------------------------------------------------------- TFLite


def run_tflite(path: str | os.PathLike, inputs: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
    """Run a single-input, single-output TFLite model on a batch.

    Args:
        path: A ``.tflite`` file (e.g. from :func:`~keras_resnet.export.export_tflite`).
        inputs: float32 batch ``(B, H, W, C)``, normalized like the model's training data.
        num_threads: Interpreter threads.

    Returns:
        The model's output for the batch, as a numpy array.

    Example:
        >>> import tempfile, numpy as np
        >>> from keras_resnet import create_model, export_tflite
        >>> path = export_tflite(create_model("_tiny", input_shape=(8, 8, 1), classes=2),
        ...                      tempfile.mkdtemp() + "/m.tflite")
        >>> run_tflite(path, np.zeros((3, 8, 8, 1), "float32")).shape
        (3, 2)
    """
    return tflite_call(tflite_interpreter(path, num_threads), inputs)


def tflite_embeds_normalization(path: str | os.PathLike) -> bool:
    """Whether a ``.tflite`` file from ``export_tflite`` takes raw pixels (``pixels``).

    Args:
        path: A ``.tflite`` file.

    Returns:
        True when its input is float pixel values in [0, 255] (mean/std embedded).

    Example:
        >>> import tempfile
        >>> from keras_resnet import create_model, export_tflite
        >>> path = export_tflite(create_model("_tiny", input_shape=(8, 8, 1), classes=2),
        ...                      tempfile.mkdtemp() + "/m.tflite", mean=[0.5], std=[0.25])
        >>> tflite_embeds_normalization(path)
        True
    """
    signatures = tflite_interpreter(path).get_signature_list()
    return any(TFLITE_PIXELS in sig.get("inputs", ()) for sig in signatures.values())


# -------------------------------------------------------------------- run folders


def load_run_preprocessing(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read the preprocessing a run was trained with from its ``data_info.json``.

    Args:
        run_dir: A run folder written by ``python -m keras_resnet train --output DIR``
            (or any folder holding a ``data_info.json``), or the JSON file itself.

    Returns:
        ``{"mean": tuple, "std": tuple, "class_names": tuple | None, "image_shape":
        tuple | None, "num_classes": int | None, "name": str | None}``; mean and std
        are per channel in [0, 1] pixel units, ready for
        :func:`~keras_resnet.export.export_saved_model`.

    Raises:
        FileNotFoundError: There is no ``data_info.json``.
        ValueError: The file is not valid JSON or lacks ``mean``/``std``.

    Example:
        >>> import json, tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (run / "data_info.json").write_text(json.dumps({"name": "digits",
        ...     "num_classes": 2, "image_shape": [8, 8, 1], "class_names": ["0", "1"],
        ...     "mean": [0.3], "std": [0.4]}))
        >>> load_run_preprocessing(run)["mean"]
        (0.3,)
    """
    file = check_path("run_dir", run_dir)
    if file.is_dir():
        file = file / DATA_INFO_FILE
    if not file.is_file():
        raise FileNotFoundError(f"No {DATA_INFO_FILE} found. Received: run_dir={str(run_dir)!r}")
    info = read_json(file)
    if not isinstance(info, dict) or "mean" not in info or "std" not in info:
        raise ValueError(f"{str(file)!r} must hold a JSON object with 'mean' and 'std'.")
    mean, std = channel_stats(info["mean"], info["std"], len(np.ravel(info["mean"])))
    names = info.get("class_names")
    shape = info.get("image_shape")
    return {
        "mean": mean,
        "std": std,
        "class_names": tuple(str(n) for n in names) if names is not None else None,
        "image_shape": tuple(int(d) for d in shape) if shape else None,
        "num_classes": int(info["num_classes"]) if info.get("num_classes") is not None else None,
        "name": info.get("name"),
    }


def resolve_model_path(path: str | os.PathLike) -> tuple[str, Path]:
    """Classify a model argument: ``("saved_model"|"keras"|"tflite"|"run", path)``.

    A run folder is a folder with ``model.keras`` (the final model of a training run).

    Args:
        path: A SavedModel folder, a ``.keras`` or ``.tflite`` file, or a run folder.

    Returns:
        The kind and the path.

    Example:
        >>> resolve_model_path("missing.keras")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        FileNotFoundError: ...
    """
    p = Path(path)
    if p.is_dir():
        if (p / "saved_model.pb").is_file():
            return "saved_model", p
        if (p / "model.keras").is_file():
            return "run", p
        raise ValueError(
            "A model folder must be a SavedModel (saved_model.pb) or a run folder "
            f"(model.keras). Received: {str(path)!r}"
        )
    if p.is_file():
        if p.suffix == ".keras":
            return "keras", p
        if p.suffix == ".tflite":
            return "tflite", p
        raise ValueError(
            f"A model file must end with '.keras' or '.tflite'. Received: {str(path)!r}"
        )
    raise FileNotFoundError(f"No such model file or folder. Received: {str(path)!r}")


# ----------------------------------------------------------------------- predict


def _unreadable(data: bytes) -> str | None:
    """Why encoded image bytes cannot be decoded, or None when they can."""
    if not data:
        return "the file is empty"
    try:
        decode_image(data, 3)  # what the serving graph runs (to 1 or 3 channels alike)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
        return f"not a readable JPEG/PNG/BMP/GIF image ({err.message.splitlines()[0]})"
    return None


def predict_images(
    model_path: str | os.PathLike,
    images: Sequence[str | os.PathLike],
    *,
    top_k: int = 5,
    data_info: str | os.PathLike | None = None,
    errors: str = "raise",
) -> list[dict[str, Any]]:
    """Classify image files with an exported or saved model.

    ``model_path`` may be a SavedModel folder from
    :func:`~keras_resnet.export.export_saved_model` (its ``serve_bytes`` signature does
    all the work), a ``.keras`` file, a run folder
    (``model.keras`` + ``data_info.json``) or a ``.tflite`` file. For the last three
    the preprocessing comes from ``data_info`` or a ``data_info.json`` beside the
    model; without one, pixels are only scaled to [0, 1].

    Every file is decoded once before the model runs: an empty, truncated, corrupt
    or non-image file raises ``ValueError`` naming every such file
    (``errors="raise"``), or gets ``{"image": path, "error": reason}`` in place of its
    result while the other images are classified (``errors="skip"``, what the
    ``predict`` command uses).

    Args:
        model_path: The model (see above).
        images: Image files (JPEG, PNG, BMP or GIF).
        top_k: Classes to report per image.
        data_info: A ``data_info.json`` (or its folder) with mean/std/class names.
        errors: ``"raise"`` or ``"skip"`` for files that cannot be decoded.

    Returns:
        One dict per image, in order: ``{"image": path, "top_k": [{"id", "name",
        "probability"}]}`` (``name`` is ``None`` when the model has no class names), or
        ``{"image": path, "error": reason}`` for a skipped file.

    Example:
        >>> predict_images("no/such/model", ["a.png"])  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        FileNotFoundError: ...
    """
    k = check_int("top_k", top_k, min_value=1)
    check_choice("errors", errors, ("raise", "skip"))
    if isinstance(images, (str, os.PathLike)) or not images:
        raise ValueError(f"`images` must be a non-empty list of files. Received: images={images!r}")
    files = [check_path("images", f) for f in images]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"No such image file. Received: {str(f)!r}")
    kind, path = resolve_model_path(model_path)
    encoded = [f.read_bytes() for f in files]
    problems = {i: why for i, data in enumerate(encoded) if (why := _unreadable(data))}
    if problems and errors == "raise":
        listed = "; ".join(f"{str(files[i])!r}: {why}" for i, why in problems.items())
        raise ValueError(f"Cannot read {len(problems)} image file(s): {listed}")
    good = [i for i in range(len(files)) if i not in problems]
    results = {i: {"image": str(files[i]), "error": why} for i, why in problems.items()}
    if good:
        probs, names = _classify(kind, path, model_path, [encoded[i] for i in good], data_info)
        results |= {i: _top_k(files[i], p, names, k) for i, p in zip(good, probs, strict=True)}
    return [results[i] for i in range(len(files))]


def _top_k(file: Path, p: np.ndarray, names: Sequence[str] | None, k: int) -> dict[str, Any]:
    def entry(i: int) -> dict[str, Any]:
        name = names[i] if names is not None and i < len(names) else None
        return {"id": int(i), "name": name, "probability": float(p[i])}

    return {"image": str(file), "top_k": [entry(i) for i in np.argsort(-p, kind="stable")[:k]]}


def _classify(
    kind: str,
    path: Path,
    model_path: str | os.PathLike,
    encoded: list[bytes],
    data_info: str | os.PathLike | None,
) -> tuple[np.ndarray, Sequence[str] | None]:
    """Class probabilities ``(N, classes)`` of decodable images, and the class names."""
    if kind == "saved_model":
        meta_file = path / METADATA_FILE
        meta = read_json(meta_file) if meta_file.is_file() else {}
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_file} must hold a JSON object; fix or remove it.")
        loaded = tf.saved_model.load(str(path))
        if BYTES_ENDPOINT not in loaded.signatures:
            raise ValueError(
                f"The SavedModel has no {BYTES_ENDPOINT!r} signature (not exported by "
                f"keras_resnet?). Received: {str(model_path)!r}"
            )
        probs = loaded.signatures[BYTES_ENDPOINT](image_bytes=tf.constant(encoded))
        probs = probs["probabilities"].numpy()
        names = meta.get("class_names")
    else:
        beside = path if kind == "run" else path.parent
        if data_info is None and (beside / DATA_INFO_FILE).is_file():
            data_info = beside
        prep = load_run_preprocessing(data_info) if data_info is not None else {}
        names = prep.get("class_names")
        if kind == "tflite":
            interpreter = tflite_interpreter(path)
            shape = interpreter.get_input_details()[0]["shape_signature"]
            size, channels = (int(shape[1]), int(shape[2])), int(shape[3])
            model_fn: Callable[[np.ndarray], np.ndarray] = lambda x: tflite_call(interpreter, x)  # noqa: E731
            logits = False
            raw_pixels = tflite_embeds_normalization(path)
        else:
            raw_pixels = False
            model = load_keras_model(path / "model.keras" if kind == "run" else path)
            check_model(model)
            shape = prep.get("image_shape")
            if None in model.input_shape[1:3] and not shape:
                raise ValueError(
                    "The model accepts any image size; pass a data_info.json with "
                    f"'image_shape' to fix the size. Received: model={str(model_path)!r}"
                )
            size = serving_size(model, tuple(shape[:2]) if None in model.input_shape[1:3] else None)
            channels = int(model.input_shape[-1])
            model_fn = lambda x: np.asarray(model(x, training=False), "float32")  # noqa: E731
            logits = outputs_logits(model)
        if not prep and not raw_pixels:
            warnings.warn(
                f"No {DATA_INFO_FILE} for {str(path)!r} (pass data_info=...): pixels are only "
                "scaled to [0, 1], which is wrong if the model was trained on normalized data.",
                stacklevel=2,
            )
        mean, std = channel_stats(prep.get("mean"), prep.get("std"), channels)
        pixels = decode_images(tf.constant(encoded), size, channels, "bilinear", True)
        probs = model_fn(pixels.numpy() if raw_pixels else normalize(pixels, mean, std).numpy())
        if logits:
            probs = tf.nn.softmax(probs, axis=-1).numpy()
    return probs, names
