"""Keras checkpoints as :class:`Checkpoint`: our own files and keras.applications ``.h5``.

- a keras_resnet ``.keras`` file or a run folder (its ``model.keras``): layers by name;
- a ``.weights.h5`` file (Keras 3 stores it by position, not by name): read into a
  fresh copy of the target architecture first;
- a keras.applications ResNet or DenseNet ``.h5`` (legacy format, layers by name) or
  ``"imagenet"`` (downloads through keras.applications): names mapped onto the
  ``*_keras`` variants and the DenseNets.
"""

from __future__ import annotations

import dataclasses
import os

import h5py
import keras
import numpy as np

from keras_resnet.utils.atomic import read_json
from keras_resnet.weights.core import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Checkpoint,
    Preprocessing,
    checkpoint_of,
)
from keras_resnet.weights.keras_applications import (
    keras_applications_name,
    keras_applications_variants,
)

# keras.applications' three modes, all at 224x224: resnet "caffe" (BGR, ImageNet mean
# x 255, no scaling), resnet_v2 "tf" (scale to [-1, 1]), densenet "torch" (scale to
# [0, 1], ImageNet mean and std).
_APPS = {"input_size": (224, 224), "source": "keras.applications"}
_CAFFE = Preprocessing(mean=IMAGENET_MEAN, mode="caffe", **_APPS)
_TF = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), mode="tf", **_APPS)
_TORCH = Preprocessing(mean=IMAGENET_MEAN, std=IMAGENET_STD, mode="torch", **_APPS)


def read_keras_file(source: str, model: keras.Model) -> Checkpoint:
    """A ``.keras`` file, a run folder or a ``.weights.h5`` file as a :class:`Checkpoint`.

    Args:
        source: The path.
        model: The target model (a ``.weights.h5`` file is read into a copy of it).

    Example:
        >>> import tempfile
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(8, 8, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
        >>> model.save(path)
        >>> "stem_conv" in read_keras_file(path, model).tensors
        True
    """
    path, prep = source, Preprocessing(source=source)
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
        if not os.path.exists(path):
            raise ValueError(f"The run folder {source} has no model.keras (is the run finished?)")
        prep = _run_preprocessing(source)
    try:
        if path.endswith(".weights.h5"):
            copy = keras.models.clone_model(model)
            copy.load_weights(path)
            return checkpoint_of(copy, source)
        ckpt = checkpoint_of(keras.saving.load_model(path, compile=False), source)
        return dataclasses.replace(ckpt, preprocessing=prep)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{source} could not be read as weights for model {model.name!r} (another "
            f"architecture, or a corrupt or truncated file): {err}"
        ) from err


def _run_preprocessing(folder: str) -> Preprocessing:
    """The normalization and classes a run folder trained with (its data_info.json)."""
    path = os.path.join(folder, "data_info.json")
    if not os.path.exists(path):
        return Preprocessing(source=folder)
    info = read_json(path, want_object=True)
    shape = info.get("image_shape")
    return Preprocessing(
        mean=info.get("mean") or None,
        std=info.get("std") or None,
        input_size=tuple(shape[:2]) if shape and None not in shape[:2] else None,
        class_names=tuple(info["class_names"]) if info.get("class_names") else None,
        source=path,
    )


def _application_of(model: keras.Model, variant: str | None) -> str:
    inverse = {v: k for k, v in keras_applications_variants().items()}
    name = variant or model.name
    if name not in inverse:
        raise ValueError(
            "keras.applications weights load into the *_keras variants "
            f"({', '.join(inverse)}). Received: model {name!r}"
        )
    return inverse[name]


def read_keras_applications(source: str, model: keras.Model, variant: str | None) -> Checkpoint:
    """keras.applications ResNet or DenseNet weights (``"imagenet"`` or a legacy ``.h5``).

    Example:
        >>> import tempfile
        >>> from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
        >>> app = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "resnet50.h5")
        >>> with h5py.File(path, "w") as f:
        ...     save_weights_to_hdf5_group(f, app)
        >>> ckpt = read_keras_applications(path, app, "resnet50_keras")
        >>> ckpt.classes, ckpt.preprocessing.mode
        (1000, 'caffe')
    """
    app = _application_of(model, variant)
    if source == "imagenet":
        include_top = any(layer.name == "predictions" for layer in model.layers)
        try:
            built = getattr(keras.applications, app)(weights="imagenet", include_top=include_top)
        except (ValueError, TypeError):
            raise
        except Exception as err:  # keras.utils.get_file raises a bare Exception offline
            raise ValueError(
                f"weights='imagenet' downloads the keras.applications {app} weights and needs "
                f"internet; the download failed ({err}). Offline, download that .h5 file "
                f"elsewhere (keras.applications.{app}(weights='imagenet') saves it under "
                "~/.keras/models/) and pass its path: weights='FILE.h5' (--weights FILE.h5)"
            ) from err
        layers = [(layer.name, layer.get_weights()) for layer in built.layers if layer.weights]
    else:
        layers = _read_legacy_h5(source)
    family = "densenet" if app.startswith("DenseNet") else "resnet"
    tensors = {
        keras_applications_name(name, family) or f"<keras.applications:{name}>": values
        for name, values in layers
    }
    prep = _TORCH if family == "densenet" else _TF if app.endswith("V2") else _CAFFE
    return Checkpoint(tensors, source, prep)


def _read_legacy_h5(path: str) -> list[tuple[str, list[np.ndarray]]]:
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            out = []
            for name in group.attrs["layer_names"]:
                name = name.decode() if isinstance(name, bytes) else str(name)
                g = group[name]
                names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
                if names:
                    out.append((name, [np.asarray(g[n]) for n in names]))
            return out
    except (OSError, KeyError) as err:
        raise ValueError(
            f"{path} is not a readable keras.applications .h5 weights file (corrupt or "
            f"truncated?): {err}"
        ) from err
