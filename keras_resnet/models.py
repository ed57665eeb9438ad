"""The ResNet builder: stem -> stages of residual blocks -> head (Keras only).

Arguments follow ``keras.applications`` (``include_top``, ``input_shape``,
``input_tensor``, ``pooling``, ``classes``, ``classifier_activation``, ``name``);
architecture arguments are the fields of :class:`keras_resnet.config.ResNetConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from keras_resnet.blocks import _bn_relu, _fill_doc, basic_block, bottleneck_block, conv2d
from keras_resnet.checks import check_bool, check_choice, check_int, check_rate
from keras_resnet.config import ResNetConfig
from keras_resnet.layers import SpatialPyramidPooling
from keras_resnet.naming import POST, PREDICTIONS, STEM, block_name

POOLINGS = (None, "avg", "max", "spp")
# Spatial pyramid pooling grids (He et al. 2014): 1x1, 2x2 and 4x4 bins.
SPP_LEVELS = (1, 2, 4)


def _check_head(include_top, input_shape, pooling, classes, classifier_activation, head_dropout):
    check_bool("include_top", include_top)
    check_choice("pooling", pooling, POOLINGS)
    if include_top:
        check_int("classes", classes, min_value=1)
    if isinstance(classifier_activation, str):
        try:
            keras.activations.get(classifier_activation)
        except ValueError as err:
            raise ValueError(
                "`classifier_activation` is not a Keras activation. "
                f"Received: classifier_activation={classifier_activation!r}"
            ) from err
    elif classifier_activation is not None and not callable(classifier_activation):
        raise TypeError(
            "`classifier_activation` must be None, a name such as 'softmax', or a callable. "
            f"Received: classifier_activation={classifier_activation!r}"
        )
    check_rate("head_dropout", head_dropout)
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                "`input_shape` must have rank 3 (height, width, channels), channels last. "
                f"Received: input_shape={input_shape!r}"
            )
        if not isinstance(shape[-1], int) or shape[-1] < 1:
            raise ValueError(
                "`input_shape` needs a known positive channel count. "
                f"Received: input_shape={input_shape!r}"
            )
        if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape[:2]):
            raise ValueError(
                "`input_shape` spatial sizes must be positive integers or None. "
                f"Received: input_shape={input_shape!r}"
            )


def _stem(x, cfg: ResNetConfig):
    bn_kw = {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}
    # Pre-activation nets leave the stem un-normalized: the first block's preact BN does it.
    post = not cfg.preact
    if cfg.stem == "deep":
        half = cfg.stem_width // 2
        for i, (f, s) in enumerate([(half, 2), (half, 1), (cfg.stem_width, 1)], start=1):
            x = conv2d(x, f, 3, strides=s, use_bias=cfg.use_bias, name=f"stem_conv{i}")
            if post or i < 3:
                x = _bn_relu(x, bn_kw, STEM, i)
    else:
        k, s = (3, 1) if cfg.stem == "cifar" else (7, 2)
        x = conv2d(x, cfg.stem_width, k, strides=s, use_bias=cfg.use_bias, name="stem_conv")
        if post:
            x = _bn_relu(x, bn_kw, STEM)
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
    last_stage = stage == len(cfg.stage_depths) - 1
    if cfg.downsample_in == "first":  # the standard layout: the first block downsamples
        stride = 1 if stage == 0 else 2
        return [(stride if b == 0 else 1, cfg.shortcut) for b in range(depth)]
    # keras.applications ResNetV2: the last block of each stage but the last one
    # downsamples, and a strided block that keeps channels subsamples its shortcut.
    kind = "subsample" if cfg.shortcut == "projection" else cfg.shortcut
    stride = 1 if last_stage else 2
    return [(stride if b == depth - 1 else 1, kind) for b in range(depth)]


def _stages(x, cfg: ResNetConfig):
    block_fn = basic_block if cfg.block == "basic" else bottleneck_block
    extra = (
        {} if cfg.block == "basic" else {"base_width": cfg.base_width, "stride_in": cfg.stride_in}
    )
    bn_kw = {"bn_epsilon": cfg.bn_epsilon, "bn_momentum": cfg.bn_momentum}
    index = 0
    for s, (depth, width) in enumerate(zip(cfg.stage_depths, cfg.stage_widths, strict=True)):
        for b, (strides, kind) in enumerate(_block_plan(cfg, s, depth)):
            index += 1
            x = block_fn(
                x,
                width,
                strides=strides,
                groups=cfg.groups,
                shortcut=kind,
                preact=cfg.preact,
                drop_path=cfg.drop_path_rate * index / cfg.num_blocks,
                dropout=cfg.dropout,
                se_ratio=cfg.se_ratio,
                zero_init_last_bn=cfg.zero_init_last_bn,
                use_bias=cfg.use_bias,
                name=block_name(s + 1, b + 1),
                **bn_kw,
                **extra,
            )
    if cfg.preact:
        x = _bn_relu(x, {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}, POST)
    return x


def _pool(x, pooling: str):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return SpatialPyramidPooling(SPP_LEVELS, name="spp")(x)


# The input and head arguments of every builder (ResNet, DenseNet), documented once.
_HEAD_ARGS = """include_top: Add the classifier (pooling + ``Dense(classes)``).
        input_shape: ``(height, width, channels)``; spatial sizes may be ``None``.
            Defaults to ``(None, None, 3)``.
        input_tensor: Optional Keras tensor to use as the model input.
        pooling: ``None``, ``"avg"``, ``"max"`` or ``"spp"`` (spatial pyramid over
            1x1, 2x2, 4x4 grids). With ``include_top`` it defaults to ``"avg"``;
            without, ``None`` returns the last feature map.
        classes: Number of classes of the classifier.
        classifier_activation: Activation of the classifier (``None`` for logits);
            it always computes in float32, also under mixed-precision policies.
        head_dropout: Dropout rate before the classifier.
        name: Model name."""


@_fill_doc(head_args=_HEAD_ARGS)
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
    _check_head(include_top, input_shape, pooling, classes, classifier_activation, head_dropout)
    inputs, x = _inputs(input_shape, input_tensor, cfg.total_stride, include_top, pooling, classes)
    x = _stem(x, cfg)
    x = _stages(x, cfg)
    x = _head(x, include_top, pooling, classes, classifier_activation, head_dropout)
    return with_weights(keras.Model(inputs, x, name=name), weights)


def with_weights(model: keras.Model, weights: str | None) -> keras.Model:
    """``model`` after loading ``weights`` into it, all or nothing (``None``: as built).

    Example:
        >>> import os, tempfile
        >>> arch = dict(block="basic", stage_depths=(1,), stage_widths=(4,), stem="cifar",
        ...             stem_width=4, input_shape=(8, 8, 3), classes=2)
        >>> trained = ResNet(**arch)
        >>> path = os.path.join(tempfile.mkdtemp(), "trained.keras")
        >>> trained.save(path)
        >>> fresh = with_weights(ResNet(**arch), path)
        >>> all(bool((a == b).all()) for a, b in zip(fresh.get_weights(), trained.get_weights()))
        True
    """
    if weights is not None:
        from keras_resnet.weights import load_weights  # weights reads files: import on use

        load_weights(model, weights)
    return model


def _inputs(input_shape, input_tensor, total_stride: int, include_top, pooling, classes):
    """The model input and the tensor to build on, checked against ``total_stride``."""
    if input_tensor is None:
        inputs = keras.Input(shape=tuple(input_shape) if input_shape else (None, None, 3))
        x = inputs
    else:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise TypeError(
                "`input_tensor` must be a Keras tensor (e.g. from keras.Input). "
                f"Received: input_tensor={type(input_tensor).__name__}"
            )
        inputs = keras.utils.get_source_inputs(input_tensor)
        x = input_tensor
        _check_head(include_top, tuple(x.shape[1:]), pooling, classes, None, 0.0)
    for d in x.shape[1:3]:
        if d is not None and d < total_stride:
            raise ValueError(
                f"Input of {x.shape[1]}x{x.shape[2]} is too small: this network downsamples "
                f"by {total_stride}, so height and width must be at least "
                f"{total_stride}. Received: input_shape={tuple(x.shape[1:])}"
            )
    return inputs, x


def _head(x, include_top, pooling, classes, classifier_activation, head_dropout):
    """Pooling and the classifier, whose output is float32 under mixed precision."""
    if include_top:
        x = _pool(x, pooling or "avg")
        if head_dropout:
            x = layers.Dropout(head_dropout, name="head_dropout")(x)
        x = layers.Dense(classes, name=PREDICTIONS)(x)
        # float32 output under mixed precision (numerically safe softmax and losses).
        x = layers.Activation(classifier_activation or "linear", dtype="float32", name="probs")(x)
    elif pooling:
        x = _pool(x, pooling)
    return x
