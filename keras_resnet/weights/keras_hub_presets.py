"""keras-hub ``ResNetBackbone`` presets as :class:`Checkpoint` (needs ``keras-hub``).

keras-hub names layers ``conv1_conv``, ``stack{s}_block{b}_{k}_conv``, ``_0_conv`` for
the projection, ``_pre_activation_bn`` and ``post_bn`` for ResNetV2, ``conv{k}_conv`` for
the deep stem of its ``resnet_vd`` presets; they map one to one onto ours.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from keras_resnet.utils.atomic import read_json
from keras_resnet.weights.core import Checkpoint, Preprocessing, read_with, require

_BLOCK = re.compile(r"^stack(\d+)_block(\d+)_(\d|pre_activation)_(conv|bn)$")
_STEM = re.compile(r"^conv(\d)_(conv|bn)$")


def keras_hub_layer_name(name: str, stem_convs: int = 1) -> str | None:
    """Our layer name for a keras-hub ``ResNetBackbone`` layer (``None`` if unmapped).

    Example:
        >>> keras_hub_layer_name("stack1_block0_0_conv")
        'stage2_block1_shortcut_conv'
        >>> keras_hub_layer_name("conv3_bn", stem_convs=3)
        'stem_bn3'
    """
    if name == "post_bn":
        return name
    m = _STEM.match(name)
    if m:
        return f"stem_{m[2]}" + (m[1] if stem_convs > 1 else "")
    m = _BLOCK.match(name)
    if not m:
        return None
    prefix = f"stage{int(m[1]) + 1}_block{int(m[2]) + 1}"
    if m[3] == "pre_activation":
        return f"{prefix}_preact_bn"
    return f"{prefix}_shortcut_{m[4]}" if m[3] == "0" else f"{prefix}_{m[4]}{m[3]}"


def _preprocessing(path: str) -> Preprocessing:
    for file in ("image_converter.json", "preprocessor.json"):
        full = os.path.join(path, file)
        if not os.path.exists(full):
            continue
        config: Any = read_json(full, want_object=True).get("config")
        if isinstance(config, dict) and isinstance(config.get("image_converter"), dict):
            config = config["image_converter"].get("config", config)
        if not isinstance(config, dict):
            raise ValueError(f"{full}: `config` must be an object. Received: {config!r}")
        scale, offset = config.get("scale"), config.get("offset")
        std = mean = None
        if isinstance(scale, list) and isinstance(offset, list):  # x * scale + offset, x in 0-255
            try:
                std = tuple(1.0 / (255.0 * s) for s in scale)
                mean = tuple(-o * s for o, s in zip(offset, std))
            except (TypeError, ZeroDivisionError):
                raise ValueError(
                    f"{full}: `scale` and `offset` must be lists of non-zero numbers. "
                    f"Received: scale={scale!r}, offset={offset!r}"
                ) from None
        size = config.get("image_size")
        return Preprocessing(
            mean=mean, std=std, input_size=tuple(size) if size else None,
            interpolation=config.get("interpolation"), source=full,
        )  # fmt: skip
    return Preprocessing(source=path)


def read_keras_hub_preset(source: str) -> Checkpoint:
    """A keras-hub ResNet preset (a local folder, or a handle when online).

    Example:
        >>> import tempfile, keras_hub
        >>> backbone = keras_hub.models.ResNetBackbone(
        ...     stackwise_num_filters=[64, 128], stackwise_num_blocks=[1, 1],
        ...     stackwise_num_strides=[1, 2], block_type="basic_block",
        ...     input_conv_filters=[64], input_conv_kernel_sizes=[7])
        >>> path = tempfile.mkdtemp()
        >>> backbone.save_to_preset(path)
        >>> "stage2_block1_shortcut_conv" in read_keras_hub_preset(path).tensors
        True
    """
    keras_hub = require("keras_hub", f"Reading the keras-hub preset {source}")
    backbone = read_with(keras_hub.models.Backbone.from_preset, source, "keras-hub preset")
    stem_convs = len(getattr(backbone, "input_conv_filters", [0]))
    tensors: dict[str, list[np.ndarray]] = {}
    for layer in backbone.layers:
        if layer.weights:
            target = keras_hub_layer_name(layer.name, stem_convs) or f"<keras-hub:{layer.name}>"
            tensors[target] = layer.get_weights()
    prep = _preprocessing(source) if os.path.isdir(source) else Preprocessing(source=source)
    return Checkpoint(tensors, source, prep)
