"""Native ``.keras`` files, saved and loaded all or nothing (Keras only).

Training writes its run's ``model.keras`` with :func:`save_keras_model`, and training,
evaluation, serving and export read models with :func:`load_keras_model`: safe mode,
keras_resnet's layers registered, the recursion limit the deepest networks need, and
a corrupt file reported as a ``ValueError``.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np

from keras_resnet.models.depth import ensure_recursion_limit
from keras_resnet.utils.atomic import atomic_path, check_destination
from keras_resnet.utils.checks import check_bool, check_path


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
        overwrite: Replace an existing file (else ``FileExistsError``).
        verify: Reload in safe mode and compare outputs before publishing (a
            mismatch raises ``ValueError``, as does a bad argument).

    Returns:
        The path of the ``.keras`` file, as a string.

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
    check_bool("verify", verify)
    dest = check_destination(path, "path", overwrite, ".keras")
    with atomic_path(dest, overwrite=overwrite) as tmp:
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

    ensure_recursion_limit()  # the deepest networks need more frames to load
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


def _verify_keras_file(path: Path, model: keras.Model) -> None:
    reloaded = load_keras_model(path)
    shape = model.input_shape
    if len(model.inputs) != 1 or not isinstance(shape, tuple) or len(shape) < 2:
        return  # only reloading is checked for models a single probe batch cannot feed
    dims = [d if d is not None else 32 for d in shape[1:]]
    probe = np.random.default_rng(0).normal(size=(2, *dims)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(probe, training=False)).astype("float32")
    got = keras.ops.convert_to_numpy(reloaded(probe, training=False)).astype("float32")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= 1e-6:
        raise ValueError(
            f"The reloaded .keras model disagrees with the original (max abs difference "
            f"{diff:.3g}); nothing was written."
        )
