"""Bring weights from ``keras.applications`` ResNets and DenseNets into keras_resnet models.

The ``*_keras`` zoo variants (``resnet50_keras`` ... ``resnet152v2_keras``) have the
exact layout of ``keras.applications.ResNet50`` ... ``ResNet152V2`` (stride on the
first 1x1, conv biases, BN epsilon 1.001e-5), so weights copy one to one and both
models give the same output. The DenseNets (``densenet121/169/201``) already have the
layout of ``keras.applications.DenseNet121/169/201``. With internet access,
``weights="imagenet"`` brings the published ImageNet weights over.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from keras_resnet.models.naming import (
    POST_BN,
    PREACT_BN,
    PREDICTIONS,
    SHORTCUT,
    STEM,
    block_name,
    part,
)
from keras_resnet.utils.checks import check_choice
from keras_resnet.weights.core import weight_shapes

# keras.applications DenseNets use BN epsilon 1.001e-5 and Keras' default momentum; the
# layout is ours, so only these two arguments change (no separate *_keras variant).
KERAS_DENSENET_BN = {"bn_epsilon": 1.001e-5, "bn_momentum": 0.99}


def keras_applications_variants() -> dict[str, str]:
    """keras.applications builder name -> the registry variant of the same layout.

    Read from the registry records' ``weights["keras_applications"]``.

    Example:
        >>> keras_applications_variants()["ResNet50V2"]
        'resnet50v2_keras'
    """
    from keras_resnet.models.registry import records

    return {
        r.weights["keras_applications"]: r.name
        for r in records()
        if "keras_applications" in r.weights
    }


_RULES = (
    (re.compile(r"^conv1_(conv|bn)$"), lambda m: f"{STEM}_{m[1]}"),
    (
        re.compile(r"^conv(\d+)_block(\d+)_0_(conv|bn)$"),
        lambda m: part(block_name(int(m[1]) - 1, int(m[2])), f"{SHORTCUT}_{m[3]}"),
    ),
    (
        re.compile(r"^conv(\d+)_block(\d+)_([123])_(conv|bn)$"),
        lambda m: part(block_name(int(m[1]) - 1, int(m[2])), m[4], int(m[3])),
    ),
    (
        re.compile(r"^conv(\d+)_block(\d+)_preact_bn$"),
        lambda m: part(block_name(int(m[1]) - 1, int(m[2])), PREACT_BN),
    ),
    (re.compile(r"^post_bn$"), lambda m: POST_BN),
    (re.compile(r"^predictions$"), lambda m: PREDICTIONS),
)
# keras.applications DenseNet121/169/201 have our DenseNet layout
# (keras_resnet.models.densenet.builder):
# conv{s+1}_block{i}_{0_bn,1_conv,1_bn,2_conv} -> stage{s}_layer{i}_{bn1,conv1,bn2,conv2}.
_DENSE_PARTS = {"0_bn": "bn1", "1_conv": "conv1", "1_bn": "bn2", "2_conv": "conv2"}
_DENSENET_RULES = (
    _RULES[0],
    (
        re.compile(r"^conv(\d+)_block(\d+)_(0_bn|1_conv|1_bn|2_conv)$"),
        lambda m: f"stage{int(m[1]) - 1}_layer{m[2]}_{_DENSE_PARTS[m[3]]}",
    ),
    (re.compile(r"^pool(\d+)_(bn|conv)$"), lambda m: f"stage{int(m[1]) - 1}_transition_{m[2]}"),
    (re.compile(r"^(bn|predictions)$"), lambda m: "post_bn" if m[1] == "bn" else m[1]),
)


def keras_applications_name(layer_name: str, family: str = "resnet") -> str | None:
    """Our layer name for a ``keras.applications`` layer name (``None`` if unmapped).

    Args:
        layer_name: A layer name of a keras.applications ResNet or DenseNet.
        family: ``"resnet"`` or ``"densenet"`` (the two use the same names for
            different layers, e.g. ``conv2_block1_0_bn``).

    Example:
        >>> keras_applications_name("conv3_block1_0_conv")
        'stage2_block1_shortcut_conv'
        >>> keras_applications_name("conv4_block2_2_bn")
        'stage3_block2_bn2'
        >>> keras_applications_name("conv3_block2_1_bn", family="densenet")
        'stage2_layer2_bn2'
    """
    check_choice("family", family, ("resnet", "densenet"))
    for pattern, target in _RULES if family == "resnet" else _DENSENET_RULES:
        match = pattern.match(layer_name)
        if match:
            return target(match)
    return None


def load_keras_applications_weights(model: keras.Model, source: keras.Model) -> keras.Model:
    """Copy the weights of a ``keras.applications`` ResNet or DenseNet into our variant.

    Args:
        model: A keras_resnet model built from the matching variant
            (``resnet50_keras`` for ``ResNet50``, ``resnet50v2_keras`` for ``ResNet50V2``,
            ``densenet121`` for ``DenseNet121``).
        source: The ``keras.applications`` model (any ``weights``).

    Returns:
        ``model``, with every weight copied (BN moving statistics included).

    Raises:
        ValueError: If the two models do not have the same layout.

    Example:
        >>> from keras_resnet import create_model
        >>> src = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
        >>> dst = create_model("resnet50_keras", input_shape=(32, 32, 3))
        >>> x = keras.random.uniform((1, 32, 32, 3))
        >>> out = load_keras_applications_weights(dst, src)(x)
        >>> float(keras.ops.max(keras.ops.abs(out - src(x)))) < 1e-5
        True
    """
    for arg, value in (("model", model), ("source", source)):
        if not isinstance(value, keras.Model):
            raise TypeError(
                f"`{arg}` must be a keras.Model. Received: {arg}={type(value).__name__}"
            )
    # Only the DenseNets concatenate feature maps.
    dense = any(isinstance(layer, keras.layers.Concatenate) for layer in source.layers)
    copies: dict[str, list[Any]] = {}  # our layer name -> the source layer's weights
    for layer in source.layers:
        if not layer.weights:
            continue
        target_name = keras_applications_name(layer.name, "densenet" if dense else "resnet")
        if target_name is None:
            raise ValueError(
                f"`source` layer {layer.name!r} is not a keras.applications ResNet or "
                "DenseNet layer"
            )
        try:
            target = model.get_layer(target_name)
        except ValueError:
            raise ValueError(
                f"`model` has no layer {target_name!r} for source layer {layer.name!r}: build "
                "the matching *_keras variant "
                f"({', '.join(keras_applications_variants().values())})"
            ) from None
        values = layer.get_weights()
        if weight_shapes(values) != weight_shapes(target.weights):
            raise ValueError(
                f"Shape mismatch for {layer.name!r} -> {target_name!r}: source "
                f"{weight_shapes(values)}, model {weight_shapes(target.weights)}"
            )
        copies[target_name] = values
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in copies]
    if missing:
        raise ValueError(
            f"`model` has layers with no counterpart in `source`: {missing[:5]}"
            + (" ..." if len(missing) > 5 else "")
        )
    for name, values in copies.items():  # only write once everything matched
        model.get_layer(name).set_weights(values)
    return model
