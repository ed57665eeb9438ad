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

# TensorFlow on CPU computes a grouped convolution as one dense convolution per
# `merge` adjacent groups (kernels on a block diagonal), merging groups while their
# input channels stay <= MERGED_MAX_CHANNELS. Measured per layer
# (benchmarks/grouped_conv.py --layers, docs/performance.md): merging 4-8 groups of 4
# channels and 4 of 8 won; at 16 channels per group merging 2 tied with 1; at 32 one
# convolution per group won.
MERGED_MAX_CHANNELS = 32


@functools.cache
def _tensorflow_on_cpu() -> bool:
    """Whether the TensorFlow backend runs without any GPU/TPU (queried once)."""
    if keras.backend.backend() != "tensorflow":
        return False
    return all(d.split(":")[0].lower() == "cpu" for d in keras.distribution.list_devices())


def grouped_conv_formulation(layer: keras.layers.Conv2D, input_shape: tuple | None = None) -> str:
    """How ``layer`` computes its grouped convolution on this backend and device.

    Returns ``"native"`` (``keras.ops.conv`` with the grouped kernel: JAX, PyTorch,
    TensorFlow on GPU, and every case the others do not cover), ``"per_group"`` (one
    dense convolution per group, concatenated: TensorFlow on CPU) or
    ``"per_{m}_groups"`` (one per ``m`` adjacent groups, their kernels on a block
    diagonal: TensorFlow on CPU with thin groups, ``m`` the largest power of two
    dividing ``groups`` with ``m`` x input channels per group <= ``MERGED_MAX_CHANNELS``).

    Args:
        layer: A built ``Conv2D`` (or :class:`GroupedConv2D`).
        input_shape: Its NHWC input shape (unused; kept for callers that pass it).

    Example:
        >>> layer = GroupedConv2D(128, 3, groups=32)
        >>> layer.build((None, 16, 16, 128))
        >>> grouped_conv_formulation(layer) in ("native", "per_8_groups")
        True
    """
    if (
        layer.groups == 1
        or layer.data_format != "channels_last"
        or tuple(layer.dilation_rate) != (1, 1)
        or not _tensorflow_on_cpu()
    ):
        return "native"
    merge, group_in = 1, layer.kernel.shape[2]
    while layer.groups % (2 * merge) == 0 and 2 * merge * group_in <= MERGED_MAX_CHANNELS:
        merge *= 2
    return "per_group" if merge == 1 else f"per_{merge}_groups"


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


def _per_group(inputs, kernel, groups: int, strides, padding: str, merge: int = 1):
    """Grouped conv as one dense convolution per ``merge`` adjacent groups, concatenated.

    With ``merge > 1`` each convolution's kernel holds its groups' kernels on a block
    diagonal (zeros elsewhere): ``merge`` times the multiply-adds in ``merge`` times fewer
    ops, which wins where the groups are thin (a few input channels each).
    """
    kh, kw, group_in, filters = kernel.shape
    group_out = filters // groups
    eye = ops.eye(merge, dtype=kernel.dtype)
    outputs = []
    for x, k in zip(
        ops.split(inputs, groups // merge, axis=-1), ops.split(kernel, groups // merge, axis=-1)
    ):
        if merge > 1:  # (kh, kw, in, g, out) -> block diagonal (kh, kw, g * in, g * out)
            k = ops.einsum(
                "hwigo,fg->hwfigo", ops.reshape(k, (kh, kw, group_in, merge, group_out)), eye
            )
            k = ops.reshape(k, (kh, kw, merge * group_in, merge * group_out))
        outputs.append(ops.conv(x, k, strides=strides, padding=padding))
    return ops.concatenate(outputs, axis=-1)


def _candidate_formulations(groups: int) -> list[str]:
    """The formulations :func:`_compute` knows for ``groups`` groups."""
    merges = [m for m in (2, 4, 8) if groups % m == 0]
    return ["depthwise", "per_group", *(f"per_{m}_groups" for m in merges)]


def _compute(formulation: str, inputs, kernel, groups: int, strides, padding: str):
    """The grouped convolution of ``inputs`` computed as ``formulation`` (not "native")."""
    if formulation == "depthwise":
        return _depthwise(inputs, kernel, groups, strides, padding)
    merge = 1 if formulation == "per_group" else int(formulation.split("_")[1])
    return _per_group(inputs, kernel, groups, strides, padding, merge)


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
        return _compute(formulation, inputs, kernel, self.groups, tuple(self.strides), self.padding)
