"""The convolution and normalization pieces every builder shares (Keras only).

PyTorch-style symmetric padding, He-normal fan-out initialization, batch
normalization (TensorFlow's fused kernel on CPU) and the docstring template helper of
the builders. Layer names are passed in: they are part of the weight format.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from keras_resnet.layers import FusedBatchNormalization, GroupedConv2D
from keras_resnet.models.naming import BN, RELU, part
from keras_resnet.utils.checks import check_float, check_rate


def conv_init() -> keras.initializers.Initializer:
    """He et al. 2015 / torchvision: normal init scaled by fan-out for ReLU networks.

    A new initializer per layer: Keras fixes an initializer's seed when it is created
    (from the state ``keras.utils.set_random_seed`` sets), so one shared instance
    would give every same-shaped kernel the same values and ignore a later seed.

    Example:
        >>> keras.utils.set_random_seed(1)
        >>> a, b = conv_init()((3, 3, 4, 4)), conv_init()((3, 3, 4, 4))
        >>> bool(keras.ops.all(a == b))
        False
    """
    return keras.initializers.VarianceScaling(
        2.0, mode="fan_out", distribution="untruncated_normal"
    )


def conv2d(
    x,
    filters: int,
    kernel_size: int,
    *,
    strides: int = 1,
    groups: int = 1,
    use_bias: bool = False,
    zero_init: bool = False,
    name: str,
):
    """A convolution with PyTorch-style symmetric padding.

    Strided convolutions pad ``kernel_size // 2`` zeros explicitly on every side and
    use ``"valid"`` padding (TensorFlow's ``"same"`` would pad only bottom/right for
    even sizes, shifting every feature map and breaking weight portability).

    Args:
        x: Input tensor (NHWC).
        filters: Output channels.
        kernel_size: Square kernel size.
        strides: Stride.
        groups: Grouped convolution (:class:`~keras_resnet.layers.GroupedConv2D`, a
            faster drop-in for ``keras.layers.Conv2D(groups=...)``).
        use_bias: Add a bias.
        zero_init: Zero-initialize the kernel.
        name: Layer name; the padding layer is ``{name}_pad``.

    Returns:
        The convolved tensor.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> tuple(conv2d(inputs, 4, 3, strides=2, name="c").shape)
        (None, 4, 4, 4)
    """
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    conv = GroupedConv2D if groups > 1 else layers.Conv2D
    return conv(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=use_bias,
        kernel_initializer="zeros" if zero_init else conv_init(),
        name=name,
    )(x)


def batch_norm(
    x, *, epsilon: float = 1e-5, momentum: float = 0.9, zero_init: bool = False, name: str
):
    """BatchNormalization over channels, optionally with gamma initialized to zero.

    Example:
        >>> inputs = keras.Input((4, 4, 3))
        >>> tuple(batch_norm(inputs, name="bn").shape)
        (None, 4, 4, 3)
    """
    return FusedBatchNormalization(
        epsilon=epsilon,
        momentum=momentum,
        gamma_initializer="zeros" if zero_init else "ones",
        name=name,
    )(x)


def bn_relu(x, bn_kw: dict, prefix: str, index: int | None = None):
    """BatchNormalization then ReLU, named ``{prefix}_bn{index}`` and ``{prefix}_relu{index}``.

    Example:
        >>> y = bn_relu(keras.Input((4, 4, 3)), {"epsilon": 1e-5}, "stem")
        >>> y._keras_history.operation.name
        'stem_relu'
    """
    x = batch_norm(x, **bn_kw, name=part(prefix, BN, index))
    return layers.ReLU(name=part(prefix, RELU, index))(x)


def check_bn(epsilon: float, momentum: float) -> None:
    """Check the batch-normalization fields of an architecture config.

    Example:
        >>> check_bn(1e-5, 0.9)
        >>> check_bn(0.0, 0.9)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: ...
    """
    check_float("bn_epsilon", epsilon, min_value=0, min_open=True)
    check_rate("bn_momentum", momentum)


def fill_doc(**fragments: str) -> Callable[[Callable], Callable]:
    """Decorator: replace ``{key}`` in the docstring by ``fragments[key]``.

    Builders share argument documentation this way, as ``keras.applications`` does.

    Example:
        >>> @fill_doc(args="x: The input.")
        ... def f(x):
        ...     'Args: {args}'
        >>> f.__doc__
        'Args: x: The input.'
    """

    def fill(fn):
        for key, text in fragments.items():
            fn.__doc__ = fn.__doc__.replace("{" + key + "}", text)
        return fn

    return fill
