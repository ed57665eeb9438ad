"""DenseNet building blocks: plain functions ``tensor -> tensor`` (Keras only).

Huang et al. 2017 ("Densely Connected Convolutional Networks"):

- :func:`dense_layer`: pre-activation BN-ReLU-conv producing ``growth_rate`` new
  feature maps, with an optional 1x1 bottleneck of ``bottleneck_width * growth_rate``
  channels first (DenseNet-B); its output is the input concatenated with the new maps.
- :func:`dense_block`: ``num_layers`` dense layers, so the block adds
  ``num_layers * growth_rate`` channels.
- :func:`transition`: BN-ReLU-1x1 conv to ``floor(compression * channels)`` channels
  (DenseNet-C when ``compression < 1``), then 2x2 average pooling with stride 2.

Dropout follows the paper ("a dropout layer after each convolutional layer except the
first one"): after every convolution of the dense layers and transitions (torchvision
applies it after the 3x3 only). Layer names are ``{name}_{part}``, e.g.
``stage2_layer3_conv2``; they are part of the weight format (see ``docs/densenet.md``).
"""

from __future__ import annotations

import keras

from keras_resnet.models.ops import bn_relu, conv2d


def _dropout(x, rate: float, name: str):
    return keras.layers.Dropout(rate, name=name)(x) if rate else x


def dense_layer(
    x,
    growth_rate: int,
    *,
    bottleneck_width: int = 4,
    dropout: float = 0.0,
    bn_epsilon: float = 1e-5,
    bn_momentum: float = 0.9,
    name: str,
):
    """One dense layer: ``concat([x, H(x)])`` with ``H`` = BN-ReLU-(1x1)-BN-ReLU-3x3.

    Huang et al. 2017, Sec. 3 ("Composite function", "Bottleneck layers").

    Args:
        x: Input tensor (NHWC) with ``c`` channels.
        growth_rate: New feature maps ``k`` produced by the 3x3 convolution.
        bottleneck_width: The 1x1 bottleneck produces ``bottleneck_width * k``
            channels (4 in DenseNet-B); 0 leaves it out (BN-ReLU-3x3 only).
        dropout: Dropout rate after each convolution (0 disables it).
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization momentum (Keras convention).
        name: Prefix of the layer names, numbered in order: ``{name}_bn1``,
            ``{name}_conv1`` (the 1x1), ``{name}_bn2``, ``{name}_conv2`` (the 3x3),
            ``{name}_concat``; without a bottleneck ``{name}_bn1``, ``{name}_conv1``
            (the 3x3), ``{name}_concat``.

    Returns:
        A tensor with ``c + growth_rate`` channels and the same spatial size.

    Example:
        >>> inputs = keras.Input((8, 8, 16))
        >>> y = dense_layer(inputs, 12, name="layer1")
        >>> tuple(y.shape)
        (None, 8, 8, 28)
    """
    bn_kw = {"epsilon": bn_epsilon, "momentum": bn_momentum}
    h = bn_relu(x, bn_kw, name, 1)
    if bottleneck_width:
        h = conv2d(h, bottleneck_width * growth_rate, 1, name=f"{name}_conv1")
        h = _dropout(h, dropout, f"{name}_dropout1")
        h = bn_relu(h, bn_kw, name, 2)
    n = 2 if bottleneck_width else 1  # the 3x3 is conv2 after a bottleneck
    h = conv2d(h, growth_rate, 3, name=f"{name}_conv{n}")
    h = _dropout(h, dropout, f"{name}_dropout{n}")
    # Concatenate (not Lambda): serializable and loads in safe mode.
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([x, h])


def dense_block(x, num_layers: int, growth_rate: int, *, name: str, **layer_options):
    """A dense block: ``num_layers`` :func:`dense_layer` calls named ``{name}_layer{i}``.

    Layer ``i`` (1-based) sees ``c + (i - 1) * growth_rate`` input channels;
    ``layer_options`` (``bottleneck_width``, ``dropout``, ``bn_epsilon``,
    ``bn_momentum``) go to every layer.

    Example:
        >>> inputs = keras.Input((8, 8, 16))
        >>> tuple(dense_block(inputs, 3, 12, name="stage1").shape)
        (None, 8, 8, 52)
    """
    for i in range(1, num_layers + 1):
        x = dense_layer(x, growth_rate, name=f"{name}_layer{i}", **layer_options)
    return x


def transition_channels(channels: int, compression: float) -> int:
    """Output channels of a transition: ``floor(compression * channels)`` (at least 1).

    Example:
        >>> transition_channels(256, 0.5), transition_channels(25, 0.5)
        (128, 12)
    """
    return max(1, int(channels * compression))


def transition(
    x,
    *,
    compression: float = 0.5,
    dropout: float = 0.0,
    bn_epsilon: float = 1e-5,
    bn_momentum: float = 0.9,
    name: str,
):
    """A transition layer: BN-ReLU-1x1 conv (compression) - 2x2 average pool, stride 2.

    Huang et al. 2017, Sec. 3 ("Pooling layers", "Compression").

    Args:
        x: Input tensor (NHWC) with ``c`` channels.
        compression: ``theta`` in (0, 1]; the conv outputs ``floor(theta * c)``
            channels (0.5 in DenseNet-C/BC, 1 in the plain DenseNet).
        dropout: Dropout rate after the convolution.
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization momentum (Keras convention).
        name: Prefix: ``{name}_bn``, ``{name}_relu``, ``{name}_conv``, ``{name}_pool``.

    Returns:
        A tensor of half the spatial size (floored) with ``floor(theta * c)`` channels.

    Example:
        >>> inputs = keras.Input((8, 8, 64))
        >>> tuple(transition(inputs, name="stage1_transition").shape)
        (None, 4, 4, 32)
    """
    x = bn_relu(x, {"epsilon": bn_epsilon, "momentum": bn_momentum}, name)
    x = conv2d(x, transition_channels(x.shape[-1], compression), 1, name=f"{name}_conv")
    x = _dropout(x, dropout, f"{name}_dropout")
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)
