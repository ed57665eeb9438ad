"""Pretrained weights from keras_resnet, keras.applications, keras-hub, timm and torchvision.

:func:`load_weights` reads a source into a :class:`~keras_resnet.weights.core.Checkpoint`
(our layer names, Keras tensor layout) with the loader of its kind, then writes it
into the model all or nothing (:func:`~keras_resnet.weights.core.assign`).

============================  ====================================================
kind                          source
============================  ====================================================
``keras``                     a keras_resnet ``.keras`` / ``.weights.h5`` file, a run folder
``keras_applications``        ``"imagenet"`` or a keras.applications ``.h5`` (``*_keras``)
``keras_hub``                 a keras-hub ResNet preset folder (or a handle when online)
``torch``                     a timm / torchvision ``.safetensors``, ``.pth``, ``.bin``, a
                              Hugging Face folder (``config.json`` + ``model.safetensors``)
                              or ``hf://timm/<name>``; a CIFAR ResNet ``.th`` file of
                              the akamaster/pytorch_resnet_cifar10 layout
============================  ====================================================
"""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_resnet.utils.atomic import read_json
from keras_resnet.weights.core import Checkpoint, Preprocessing, assign
from keras_resnet.weights.keras_applications import (
    KERAS_DENSENET_BN,
    keras_applications_name,
    keras_applications_variants,
    load_keras_applications_weights,
)

SOURCE_KINDS = ("keras", "keras_applications", "keras_hub", "torch")
_TORCH_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".th")

__all__ = [
    "SOURCE_KINDS",
    "Checkpoint",
    "Preprocessing",
    "assign",
    "checkpoint_arch",
    "keras_applications_name",
    "keras_applications_variants",
    "load_keras_applications_weights",
    "load_weights",
    "read_checkpoint",
    "source_kind",
]


def _folder_kind(path: str) -> str:
    if os.path.exists(os.path.join(path, "model.keras")):
        return "keras"
    config_path = os.path.join(path, "config.json")
    if os.path.exists(config_path):
        config = read_json(config_path, want_object=True)
        if "architecture" in config:
            return "torch"  # timm's Hugging Face config
        if "keras_hub" in str(config.get("module", "")):
            return "keras_hub"
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return "torch"
    raise ValueError(
        f"`weights` folder {path} is none of: a run folder (model.keras), a timm / Hugging "
        "Face folder (config.json + model.safetensors), a keras-hub preset"
    )


def source_kind(source: str) -> str:
    """Which loader reads ``source`` (one of :data:`SOURCE_KINDS`).

    Example:
        >>> source_kind("resnet50.a1_in1k.safetensors"), source_kind("imagenet")
        ('torch', 'keras_applications')
        >>> source_kind("run.keras"), source_kind("ResNet50.h5"), source_kind("resnet20.th")
        ('keras', 'keras_applications', 'torch')
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "`weights` must be a path or a name such as 'imagenet'. "
            f"Received: weights={type(source).__name__}"
        )
    source = os.fspath(source)
    if source == "imagenet":
        return "keras_applications"
    if source.startswith("hf://timm/"):
        return "torch"
    if os.path.isdir(source):
        return _folder_kind(source)
    if source.endswith((".keras", ".weights.h5")):
        return "keras"
    if source.endswith(".h5"):
        return "keras_applications"
    if source.endswith(_TORCH_SUFFIXES):
        return "torch"
    if not os.path.exists(source) and os.sep not in source and "." not in source:
        return "keras_hub"  # a keras-hub preset handle such as "resnet_50_imagenet"
    raise ValueError(
        "`weights` must be 'imagenet', a .keras / .weights.h5 / .h5 / .safetensors / .pth "
        "/ .pt / .bin / .th file, a run, timm or keras-hub folder, an hf://timm/<name> handle or a "
        f"keras-hub preset name. Received: weights={source!r}"
    )


def checkpoint_arch(source: str | os.PathLike, variant: str) -> dict[str, Any]:
    """Architecture fields ``variant`` needs to compute exactly what ``source``'s weights did.

    keras.applications' DenseNets (``"imagenet"`` or their ``.h5``) use BN epsilon
    1.001e-5 and Keras' default momentum 0.99, where the DenseNet variants use
    torchvision's; every other checkpoint matches its variant as registered.
    ``create_model`` and ``DenseNet`` build with these fields (under the caller's).

    Args:
        source: A weights source, as for :func:`keras_resnet.weights.load_weights`.
        variant: The registry name of the model being built.

    Example:
        >>> checkpoint_arch("imagenet", "densenet121")
        {'bn_epsilon': 1.001e-05, 'bn_momentum': 0.99}
        >>> checkpoint_arch("imagenet", "resnet50_keras"), checkpoint_arch("x.pth", "densenet121")
        ({}, {})
    """
    if source_kind(source) != "keras_applications":
        return {}
    application = {v: k for k, v in keras_applications_variants().items()}.get(variant, "")
    return dict(KERAS_DENSENET_BN) if application.startswith("DenseNet") else {}


def read_checkpoint(source: str, model: keras.Model, variant: str | None = None) -> Checkpoint:
    """Read ``source`` into a :class:`Checkpoint` for ``model`` (nothing is written).

    Args:
        source: See :func:`load_weights`.
        model: The target model (needed for ``.weights.h5`` and keras.applications).
        variant: The zoo name of ``model`` when its ``name`` was overridden.

    Example:
        >>> from keras_resnet import create_model
        >>> import tempfile
        >>> model = create_model("_tiny", input_shape=(8, 8, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.keras")
        >>> model.save(path)
        >>> read_checkpoint(path, model).classes
        10
    """
    kind = source_kind(source)
    source = os.fspath(source)
    if kind != "keras_hub" and source not in ("imagenet",) and not source.startswith("hf://"):
        if not os.path.exists(source):
            raise ValueError(f"`weights` file not found. Received: weights={source!r}")
    if kind == "torch":
        from keras_resnet.weights.torch_checkpoints import read_torch_checkpoint

        return read_torch_checkpoint(source)
    if kind == "keras_hub":
        from keras_resnet.weights.keras_hub_presets import read_keras_hub_preset

        return read_keras_hub_preset(source)
    from keras_resnet.weights.keras_files import read_keras_applications, read_keras_file

    if kind == "keras":
        return read_keras_file(source, model)
    return read_keras_applications(source, model, variant)


def load_weights(model: keras.Model, source: str, variant: str | None = None) -> Preprocessing:
    """Load pretrained weights into ``model``, all or nothing.

    Every tensor is matched by layer name and shape before any is written. The
    classifier may differ: without ``predictions`` (``include_top=False``) the
    checkpoint's head is dropped; a head of another size is kept fresh (with a
    warning). Any input size works (the weights do not depend on it).

    Args:
        model: A keras_resnet model of the checkpoint's architecture (e.g. ``resnet50``
            for a timm / torchvision ``resnet50``, ``resnet50v2`` for timm
            ``resnetv2_50``, ``resnet50_keras`` for keras.applications ``ResNet50``).
        source: A ``.keras`` / ``.weights.h5`` file or run folder; ``"imagenet"`` or a
            keras.applications ``.h5`` file; a keras-hub preset folder or handle; a
            timm / torchvision ``.safetensors`` / ``.pth`` / ``.bin`` file, Hugging Face
            folder or ``hf://timm/<name>``; a CIFAR ResNet ``.th`` / ``.pth`` file of
            the akamaster/pytorch_resnet_cifar10 layout (``resnet20`` ... ``resnet1202``).
        variant: The zoo name of ``model`` when its ``name`` was overridden.

    Returns:
        The checkpoint's :class:`Preprocessing` (mean/std, input size, crop, ...).

    Raises:
        ValueError: An unreadable file, or tensors that do not match (naming the
            first mismatches); ``model`` is then untouched.
        ImportError: An optional reader (safetensors, torch, keras-hub) is missing.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from keras_resnet import create_model
        >>> trained = create_model("_tiny", input_shape=(8, 8, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.keras")
        >>> trained.save(path)
        >>> fresh = create_model("_tiny", input_shape=(16, 16, 3))
        >>> _ = load_weights(fresh, path)
        >>> a, b = (m.get_layer("stem_conv").kernel for m in (fresh, trained))
        >>> bool(np.all(a == b))
        True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    ckpt = read_checkpoint(source, model, variant)
    assign(model, ckpt)
    model.pretrained_preprocessing = ckpt.preprocessing  # travels to train() and export
    return ckpt.preprocessing
