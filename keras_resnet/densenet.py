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
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from keras_resnet.blocks import _bn_relu, _fill_doc, conv2d
from keras_resnet.checks import check_choice, check_float, check_int, check_ints, check_rate
from keras_resnet.config import ArchConfig
from keras_resnet.dense_blocks import dense_block, transition, transition_channels
from keras_resnet.models import _HEAD_ARGS, _check_head, _head, _inputs, with_weights
from keras_resnet.naming import POST, STEM

DENSENET_STEMS = ("imagenet", "cifar")


@dataclass(frozen=True)
class DenseNetConfig(ArchConfig):
    """Architecture of a DenseNet (everything except input, head and data).

    Args:
        growth_rate: ``k``, feature maps each dense layer adds (32 for the ImageNet
            DenseNet-121/169/201/264, 48 for DenseNet-161, 12/24/40 on CIFAR).
        block_sizes: Dense layers in each dense block, e.g. ``(6, 12, 24, 16)``; a
            transition follows every block but the last.
        stem: ``"imagenet"`` (7x7/2 conv - BN - ReLU - 3x3/2 max-pool) or
            ``"cifar"`` (one 3x3 conv).
        stem_width: Output channels of the stem (``2k`` in DenseNet-BC, 16 in the
            plain CIFAR DenseNet).
        bottleneck_width: The 1x1 bottleneck of each dense layer has
            ``bottleneck_width * growth_rate`` channels (4 in DenseNet-B); 0 leaves
            it out (BN-ReLU-3x3 layers, the plain DenseNet).
        compression: ``theta`` in (0, 1]: a transition outputs
            ``floor(theta * channels)`` (0.5 in DenseNet-C/BC, 1 otherwise).
        dropout: Dropout rate after each convolution but the stem's (the paper used
            0.2 on CIFAR without data augmentation).
        bn_epsilon: BatchNormalization epsilon (torchvision 1e-5; keras.applications
            1.001e-5).
        bn_momentum: BatchNormalization momentum (Keras convention; 0.9 equals
            PyTorch's 0.1).

    Example:
        >>> cfg = DenseNetConfig(block_sizes=(6, 12, 24, 16), growth_rate=32)
        >>> cfg.depth, cfg.num_features, cfg.total_stride
        (121, 1024, 32)
    """

    growth_rate: int = 32
    block_sizes: tuple[int, ...] = (6, 12, 24, 16)
    stem: str = "imagenet"
    stem_width: int = 64
    bottleneck_width: int = 4
    compression: float = 0.5
    dropout: float = 0.0
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        check_int("growth_rate", self.growth_rate, min_value=1)
        block_sizes = check_ints("block_sizes", self.block_sizes, min_value=1)
        object.__setattr__(self, "block_sizes", block_sizes)
        check_choice("stem", self.stem, DENSENET_STEMS)
        check_int("stem_width", self.stem_width, min_value=1)
        check_int("bottleneck_width", self.bottleneck_width, min_value=0)  # 0: no bottleneck
        check_float("compression", self.compression, min_value=0, max_value=1, min_open=True)
        check_rate("dropout", self.dropout)
        self._check_bn()

    @property
    def depth(self) -> int:
        """``L`` as the paper counts it: convolutions and the classifier.

        Stem conv(s), two (or one, without bottleneck) per dense layer, one per
        transition, and the classifier: 121 for ``(6, 12, 24, 16)`` with bottlenecks.
        """
        per_layer = 2 if self.bottleneck_width else 1
        return 1 + per_layer * sum(self.block_sizes) + len(self.block_sizes) - 1 + 1

    @property
    def num_features(self) -> int:
        """Channels of the last feature map (the classifier's input)."""
        c = self.stem_width
        for i, n in enumerate(self.block_sizes):
            c += n * self.growth_rate
            if i < len(self.block_sizes) - 1:
                c = transition_channels(c, self.compression)
        return c

    @property
    def total_stride(self) -> int:
        """Overall downsampling factor from input to the last feature map."""
        return (4 if self.stem == "imagenet" else 1) * 2 ** (len(self.block_sizes) - 1)


def _stem(x, cfg: DenseNetConfig):
    if cfg.stem == "cifar":
        return conv2d(x, cfg.stem_width, 3, name="stem_conv")
    x = conv2d(x, cfg.stem_width, 7, strides=2, name="stem_conv")
    x = _bn_relu(x, {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}, STEM)
    # Zero padding equals PyTorch's -inf padding after a ReLU (values are >= 0).
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)


def _features(x, cfg: DenseNetConfig):
    # The options every dense layer and transition takes.
    shared = {"dropout": cfg.dropout, "bn_epsilon": cfg.bn_epsilon, "bn_momentum": cfg.bn_momentum}
    for s, n in enumerate(cfg.block_sizes, start=1):
        x = dense_block(
            x,
            n,
            cfg.growth_rate,
            bottleneck_width=cfg.bottleneck_width,
            **shared,
            name=f"stage{s}",
        )
        if s < len(cfg.block_sizes):
            x = transition(
                x,
                compression=cfg.compression,
                **shared,
                name=f"stage{s}_transition",
            )
    return _bn_relu(x, {"epsilon": cfg.bn_epsilon, "momentum": cfg.bn_momentum}, POST)


@_fill_doc(head_args=_HEAD_ARGS)
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
    _check_head(include_top, input_shape, pooling, classes, classifier_activation, head_dropout)
    inputs, x = _inputs(input_shape, input_tensor, cfg.total_stride, include_top, pooling, classes)
    x = _features(_stem(x, cfg), cfg)
    x = _head(x, include_top, pooling, classes, classifier_activation, head_dropout)
    return with_weights(keras.Model(inputs, x, name=name), weights)
