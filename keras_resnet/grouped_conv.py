"""A drop-in for ``keras.layers.Conv2D(groups=...)`` that is fast on every backend.

TensorFlow's grouped ``Conv2D`` on CPU computes the kernel gradient about 100x slower
than its arithmetic (1.27 s for one 3x3, 128-channel, 32-group layer at 16x16, batch 8,
against 9 ms for a depthwise convolution of the same multiply-adds; see
``docs/performance.md``). :class:`GroupedConv2D` keeps the kernel, its shape, the layer
name and the numbers of ``Conv2D(groups=...)`` and only changes how TensorFlow on CPU
computes it; JAX, PyTorch and TensorFlow on GPU keep the native grouped convolution.
"""

from __future__ import annotations

import functools

import keras
from keras import ops

# TensorFlow on CPU uses the depthwise formulation up to this many input channels per
# group (its intermediate tensor has out/groups times the input's channels) and on maps
# of at least DEPTHWISE_MIN_PIXELS; otherwise one convolution per group. Measured per layer
# (benchmarks/grouped_conv.py --layers, docs/performance.md): depthwise won at 4 channels
# per group on 16x16 to 4x4 maps, per-group at 2x2 and at 64 channels per group.
DEPTHWISE_MAX_GROUP_CHANNELS = 16
DEPTHWISE_MIN_PIXELS = 16


@functools.cache
def _tensorflow_on_cpu() -> bool:
    """Whether the TensorFlow backend runs without any GPU/TPU (queried once)."""
    if keras.backend.backend() != "tensorflow":
        return False
    return all(d.split(":")[0].lower() == "cpu" for d in keras.distribution.list_devices())


def grouped_conv_formulation(layer: keras.layers.Conv2D, input_shape: tuple | None = None) -> str:
    """How ``layer`` computes its grouped convolution on this backend and device.

    Returns ``"native"`` (``keras.ops.conv`` with grouped kernel: JAX, PyTorch,
    TensorFlow on GPU, and every case the others do not cover), ``"depthwise"`` (a
    depthwise convolution and a sum over each group's input channels: TensorFlow on CPU
    with few channels per group) or ``"per_group"`` (one convolution per group,
    concatenated: TensorFlow on CPU with many channels per group or tiny maps).

    Args:
        layer: A built ``Conv2D`` (or :class:`GroupedConv2D`).
        input_shape: Its NHWC input shape, when known (tiny maps go per group).

    Example:
        >>> layer = GroupedConv2D(8, 3, groups=4)
        >>> layer.build((None, 8, 8, 8))
        >>> grouped_conv_formulation(layer) in ("native", "depthwise", "per_group")
        True
    """
    if (
        layer.groups == 1
        or layer.data_format != "channels_last"
        or tuple(layer.dilation_rate) != (1, 1)
        or not _tensorflow_on_cpu()
    ):
        return "native"
    if layer.kernel.shape[2] > DEPTHWISE_MAX_GROUP_CHANNELS:
        return "per_group"
    height, width = (input_shape or (None, None, None))[1:3]
    if height is not None and width is not None and height * width < DEPTHWISE_MIN_PIXELS:
        return "per_group"
    return "depthwise"


def _depthwise(inputs, kernel, groups: int, strides, padding: str):
    """Grouped conv as depthwise conv (multiplier = outputs per group) + per-group sum.

    ``kernel[h, w, i, g * out + o]`` becomes the depthwise kernel ``[h, w, g * in + i, o]``;
    the depthwise output channel ``(g * in + i) * out + o`` then summed over ``i``.
    Same multiply-adds as the grouped conv; TensorFlow's depthwise kernels have a fast
    backward pass on CPU.
    """
    kh, kw, group_in, filters = kernel.shape
    group_out = filters // groups
    dw_kernel = ops.reshape(kernel, (kh, kw, group_in, groups, group_out))
    dw_kernel = ops.reshape(ops.transpose(dw_kernel, (0, 1, 3, 2, 4)), (kh, kw, -1, group_out))
    y = ops.depthwise_conv(inputs, dw_kernel, strides=strides, padding=padding)
    batch, height, width = ops.shape(y)[0], ops.shape(y)[1], ops.shape(y)[2]
    y = ops.reshape(y, (batch, height, width, groups, group_in, group_out))
    return ops.reshape(ops.sum(y, axis=4), (batch, height, width, filters))


def _per_group(inputs, kernel, groups: int, strides, padding: str):
    """Grouped conv as one dense convolution per group, concatenated."""
    pieces = zip(ops.split(inputs, groups, axis=-1), ops.split(kernel, groups, axis=-1))
    return ops.concatenate(
        [ops.conv(x, k, strides=strides, padding=padding) for x, k in pieces], axis=-1
    )


_FORMULATIONS = {"depthwise": _depthwise, "per_group": _per_group}


@keras.saving.register_keras_serializable(package="keras_resnet")
class GroupedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose grouped case is computed the fastest correct way.

    Same arguments, kernel (``(kh, kw, in / groups, filters)``, named ``kernel``),
    config and results as ``keras.layers.Conv2D`` (outputs and gradients equal to
    1e-5); only the formulation differs, chosen by :func:`grouped_conv_formulation`.
    Weights move freely between the two (``set_weights``), and ``.keras`` files that
    hold a plain ``Conv2D(groups=...)`` still load as that layer.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(2, 8, 8, 8)).astype("float32")
        >>> fast = GroupedConv2D(8, 3, groups=4, padding="same")
        >>> plain = keras.layers.Conv2D(8, 3, groups=4, padding="same")
        >>> plain.build(x.shape)
        >>> fast.build(x.shape)
        >>> fast.set_weights(plain.get_weights())
        >>> bool(np.allclose(fast(x), plain(x), atol=1e-5))
        True
    """

    def convolution_op(self, inputs, kernel):
        formulation = grouped_conv_formulation(self, tuple(inputs.shape))
        if formulation == "native":
            return super().convolution_op(inputs, kernel)
        return _FORMULATIONS[formulation](
            inputs, kernel, self.groups, tuple(self.strides), self.padding
        )
