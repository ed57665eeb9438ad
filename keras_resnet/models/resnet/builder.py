"""The ResNet builder: stem -> stages of residual blocks -> head (Keras only).

Arguments follow ``keras.applications`` (``include_top``, ``input_shape``,
``input_tensor``, ``pooling``, ``classes``, ``classifier_activation``, ``name``);
architecture arguments are the fields of :class:`keras_resnet.models.resnet.config.ResNetConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from keras_resnet.models.depth import ensure_recursion_limit
from keras_resnet.models.heads import HEAD_ARGS, check_head, head, model_inputs, with_weights
from keras_resnet.models.naming import POST, STEM, block_name
from keras_resnet.models.ops import bn_relu, conv2d, fill_doc
from keras_resnet.models.resnet.blocks import basic_block, bottleneck_block
from keras_resnet.models.resnet.config import ResNetConfig

# The block arguments that are ResNetConfig fields of the same name.
_BLOCK_FIELDS = ("groups", "preact", "dropout", "se_ratio", "zero_init_last_bn", "use_bias")
_BN_FIELDS = ("bn_epsilon", "bn_momentum")
_BOTTLENECK_FIELDS = ("base_width", "stride_in")


def _stem(x, cfg: ResNetConfig):
    bn_kw = {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}
    # Pre-activation nets leave the stem un-normalized: the first block's preact BN does it.
    post = not cfg.preact
    if cfg.stem == "deep":
        half = cfg.stem_width // 2
        for i, (f, s) in enumerate([(half, 2), (half, 1), (cfg.stem_width, 1)], start=1):
            x = conv2d(x, f, 3, strides=s, use_bias=cfg.use_bias, name=f"stem_conv{i}")
            if post or i < 3:
                x = bn_relu(x, bn_kw, STEM, i)
    else:
        k, s = (3, 1) if cfg.stem == "cifar" else (7, 2)
        x = conv2d(x, cfg.stem_width, k, strides=s, use_bias=cfg.use_bias, name="stem_conv")
        if post:
            x = bn_relu(x, bn_kw, STEM)
    if cfg.stem == "cifar":
        return x
    if cfg.stem_pool_padding == "zeros":  # keras.applications, layer for layer
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        return layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    # PyTorch's MaxPool2d(3, 2, padding=1): Keras "same" max-pooling never lets padding
    # win, and with stride 1 it pads one pixel on each side; keeping every second
    # output then gives the symmetric stride-2 pool ("same" at stride 2 would pad only
    # bottom/right for even sizes).
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="stem_pool")(x)
    return layers.MaxPooling2D(1, strides=2, name="stem_pool_stride")(x)


def _block_plan(cfg: ResNetConfig, stage: int, depth: int):
    """(strides, shortcut kind) of each block of a stage."""
    if cfg.downsample_in == "first":  # the standard layout: the first block downsamples
        stride = 1 if stage == 0 else 2
        return [(stride if b == 0 else 1, cfg.shortcut) for b in range(depth)]
    # keras.applications ResNetV2: the last block of each stage but the last one
    # downsamples, and a strided block that keeps channels subsamples its shortcut.
    kind = "subsample" if cfg.shortcut == "projection" else cfg.shortcut
    stride = 1 if stage == len(cfg.stage_depths) - 1 else 2
    return [(stride if b == depth - 1 else 1, kind) for b in range(depth)]


def _stages(x, cfg: ResNetConfig):
    block_fn = basic_block if cfg.block == "basic" else bottleneck_block
    fields = _BLOCK_FIELDS + _BN_FIELDS + (_BOTTLENECK_FIELDS if cfg.block == "bottleneck" else ())
    options = {field: getattr(cfg, field) for field in fields}
    index = 0
    for s, (depth, width) in enumerate(zip(cfg.stage_depths, cfg.stage_widths, strict=True)):
        for b, (strides, kind) in enumerate(_block_plan(cfg, s, depth)):
            index += 1
            drop_path = cfg.drop_path_rate * index / cfg.num_blocks
            name = block_name(s + 1, b + 1)
            x = block_fn(
                x, width, strides=strides, shortcut=kind, drop_path=drop_path, name=name, **options
            )
    if cfg.preact:
        x = bn_relu(x, {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}, POST)
    return x


@fill_doc(head_args=HEAD_ARGS)
def ResNet(  # noqa: N802 - Keras-applications naming convention for model builders
    *,
    include_top: bool = True,
    input_shape: tuple[int | None, int | None, int] | None = None,
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | Callable | None = "softmax",
    head_dropout: float = 0.0,
    name: str = "resnet",
    config: ResNetConfig | None = None,
    weights: str | None = None,
    **arch: Any,
) -> keras.Model:
    """Build a residual network as a functional ``keras.Model`` (channels last).

    He et al. 2015 (residual learning), 2016 (pre-activation); Xie et al. 2017
    (ResNeXt); Zagoruyko & Komodakis 2016 (wide); Huang et al. 2016 (stochastic
    depth); He et al. 2019 (bag of tricks: v1.5, deep stem, ResNet-D); He et al. 2014
    (spatial pyramid pooling).

    Args:
        {head_args}
        config: A :class:`ResNetConfig`; ``**arch`` fields override it.
        weights: Pretrained weights to load, all or nothing (see
            :func:`keras_resnet.weights.load_weights`): a ``.keras`` file, a run folder,
            a timm / torchvision / keras-hub / keras.applications checkpoint.
        **arch: Architecture fields of :class:`ResNetConfig` (``block``,
            ``stage_depths``, ``stage_widths``, ``stem``, ``shortcut``, ``groups``, ...).

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: For an invalid argument, before any layer is built.
        TypeError: For an unknown architecture argument.

    Example:
        >>> model = ResNet(block="basic", stage_depths=(1, 1), stage_widths=(8, 16),
        ...                stem="cifar", stem_width=8, input_shape=(16, 16, 3), classes=3)
        >>> tuple(model.output.shape)
        (None, 3)
    """
    cfg = ResNetConfig.resolve(config, arch)
    ensure_recursion_limit(cfg.num_blocks)
    check_head(include_top, input_shape, pooling, classes, classifier_activation, head_dropout)
    inputs, x = model_inputs(
        input_shape, input_tensor, cfg.total_stride, include_top, pooling, classes
    )
    x = _stem(x, cfg)
    x = _stages(x, cfg)
    x = head(x, include_top, pooling, classes, classifier_activation, head_dropout)
    return with_weights(keras.Model(inputs, x, name=name), weights)
