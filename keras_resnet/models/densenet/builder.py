"""The DenseNet builder: stem -> dense blocks and transitions -> BN-ReLU -> head (Keras only).

Huang et al. 2017 ("Densely Connected Convolutional Networks"). Head and input
arguments are those of ``keras.applications`` and :func:`keras_resnet.ResNet`;
architecture arguments are the fields of :class:`DenseNetConfig`.

The ImageNet layout is exactly that of torchvision's and keras.applications'
DenseNets: 7x7/2 conv (3 pixels of zero padding) - BN - ReLU - 3x3/2 max-pool on a
1-pixel zero border (PyTorch pads with -inf, which equals 0 after a ReLU), dense
blocks, transitions, a final BN-ReLU and global average pooling. The CIFAR stem is
a single 3x3 convolution (no BN, ReLU or pooling: the first dense layer's BN-ReLU
follows), as in the paper's CIFAR models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from keras_resnet.models.densenet.blocks import dense_block, transition
from keras_resnet.models.densenet.config import DenseNetConfig
from keras_resnet.models.depth import ensure_recursion_limit
from keras_resnet.models.heads import HEAD_ARGS, check_head, head, model_inputs, with_weights
from keras_resnet.models.naming import POST, STEM
from keras_resnet.models.ops import bn_relu, conv2d, fill_doc


def _stem(x, cfg: DenseNetConfig):
    if cfg.stem == "cifar":
        return conv2d(x, cfg.stem_width, 3, name="stem_conv")
    x = conv2d(x, cfg.stem_width, 7, strides=2, name="stem_conv")
    x = bn_relu(x, {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}, STEM)
    # Zero padding equals PyTorch's -inf padding after a ReLU (values are >= 0).
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)


def _features(x, cfg: DenseNetConfig):
    # The options every dense layer and transition takes.
    shared = {"dropout": cfg.dropout, "bn_epsilon": cfg.bn_epsilon, "bn_momentum": cfg.bn_momentum}
    layer_options = {"bottleneck_width": cfg.bottleneck_width, **shared}
    for s, n in enumerate(cfg.block_sizes, start=1):
        x = dense_block(x, n, cfg.growth_rate, name=f"stage{s}", **layer_options)
        if s < len(cfg.block_sizes):
            x = transition(x, compression=cfg.compression, name=f"stage{s}_transition", **shared)
    return bn_relu(x, {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}, POST)


@fill_doc(head_args=HEAD_ARGS)
def DenseNet(  # noqa: N802 - Keras-applications naming convention for model builders
    *,
    include_top: bool = True,
    input_shape: tuple[int | None, int | None, int] | None = None,
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | Callable | None = "softmax",
    head_dropout: float = 0.0,
    name: str = "densenet",
    config: DenseNetConfig | None = None,
    weights: str | None = None,
    **arch: Any,
) -> keras.Model:
    """Build a DenseNet / DenseNet-BC as a functional ``keras.Model`` (channels last).

    Huang et al. 2017. Layers are named ``stem_*``, ``stage{s}_layer{i}_*`` (dense
    layers), ``stage{s}_transition_*``, ``post_bn`` and ``predictions``.

    Args:
        {head_args}
        config: A :class:`DenseNetConfig`; ``**arch`` fields override it.
        weights: Pretrained weights to load, all or nothing (see
            :func:`keras_resnet.weights.load_weights`); keras.applications weights
            also set its BN epsilon and momentum unless ``config`` or ``**arch`` do
            (:func:`keras_resnet.weights.checkpoint_arch`).
        **arch: Fields of :class:`DenseNetConfig` (``growth_rate``,
            ``block_sizes``, ``stem``, ``stem_width``, ``bottleneck_width``,
            ``compression``, ``dropout``, ``bn_epsilon``, ``bn_momentum``).

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: For an invalid argument, before any layer is built.
        TypeError: For an unknown architecture argument.

    Example:
        >>> model = DenseNet(growth_rate=4, block_sizes=(2, 2), stem="cifar", stem_width=8,
        ...                  input_shape=(16, 16, 3), classes=3)
        >>> tuple(model.output.shape), model.get_layer("stage1_transition_conv").filters
        ((None, 3), 8)
    """
    if weights is not None and config is None:
        from keras_resnet.weights import checkpoint_arch  # weights reads files: on use

        arch = {**checkpoint_arch(weights, name), **arch}  # e.g. keras.applications' BN
    cfg = DenseNetConfig.resolve(config, arch)
    ensure_recursion_limit(sum(cfg.block_sizes))
    check_head(include_top, input_shape, pooling, classes, classifier_activation, head_dropout)
    inputs, x = model_inputs(
        input_shape, input_tensor, cfg.total_stride, include_top, pooling, classes
    )
    x = _features(_stem(x, cfg), cfg)
    x = head(x, include_top, pooling, classes, classifier_activation, head_dropout)
    return with_weights(keras.Model(inputs, x, name=name), weights)
